"""Administrators' account management and the public application for an account.

Administrators manage the accounts of their own authority only (users whose organisation belongs
to it). Every change they make carries a reason and is audited in the same transaction. Passwords
are never chosen or seen by an administrator: a one-time link is emailed through the outbox, and
only the SHA-256 of its token is stored.

Functions that change something check everything first and return the problems instead when
there are any, so a refusal leaves nothing changed.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from app import audit, outbox, policy
from app.accounts import passwords, sign_in, vetting
from app.clock import as_utc, now
from app.models import (ROLES, AccountApplication, AuditEvent, Authority, Organisation, PasswordReset,
                        RecoveryCode, User, WebSession)
from app.web.sessions import end_all_sessions

ROLE_LABELS = {"practitioner": "Practitioner", "administrator": "eCAF administrator",
               "process_owner": "Process owner", "service_team": "Service team"}
STATES = {"active": "Active", "disabled": "Disabled", "locked": "Locked",
          "vetting": "Cannot sign in because of vetting", "not_enrolled": "Not yet enrolled"}
RESET_LINK_HOURS = 24
RESET_LINK_LIFETIME = timedelta(hours=RESET_LINK_HOURS)
MAX_LISTED = 200
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")

LinkFor = Callable[[str], str]  # token -> the absolute address of the set-password page


@dataclass
class AccountDetails:
    """What an administrator may change about an account."""

    full_name: str
    job_title: str
    phone: str
    organisation_id: int | None
    role: str


@dataclass
class NewAccount(AccountDetails):
    username: str = ""
    email: str = ""


@dataclass
class Application:
    """What a person asking for an account tells us."""

    full_name: str
    email: str
    job_title: str
    phone: str
    organisation_id: int | None
    manager_name: str
    manager_email: str
    reason: str


@dataclass
class Result:
    """What an administrator's action did: `changed` is False for a no-op, which changes nothing."""

    changed: bool
    message: str
    message_ids: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- which accounts an administrator manages

def _accounts_of(admin: User):
    return (select(User).join(Organisation, User.organisation_id == Organisation.id)
            .where(Organisation.authority_id == policy.authority_id_of(admin)))


def account_of(session: Session, admin: User, user_id: int) -> User | None:
    """The account if it belongs to the administrator's authority, else None (the caller answers 404)."""
    return session.scalar(_accounts_of(admin).where(User.id == user_id)
                          .options(joinedload(User.organisation)))


def organisations_of(session: Session, admin: User) -> list[Organisation]:
    return session.scalars(select(Organisation).where(Organisation.authority_id == policy.authority_id_of(admin))
                           .order_by(Organisation.name)).all()


def organisations_by_authority(session: Session) -> list[tuple[Authority, list[Organisation]]]:
    """Every organisation, grouped under its local authority (the public application form's list)."""
    rows = session.scalars(select(Organisation).join(Authority).options(joinedload(Organisation.authority))
                           .order_by(Authority.name, Organisation.name)).all()
    grouped: dict[int, tuple[Authority, list[Organisation]]] = {}
    for organisation in rows:
        grouped.setdefault(organisation.authority_id, (organisation.authority, []))[1].append(organisation)
    return list(grouped.values())


def _vetting_problem_clause(today: date):
    """SQL for User.vetting_problem: no check, no training, or an expired check."""
    return or_(User.vetting_type.is_(None), User.vetting_reference.is_(None), User.vetting_checked_on.is_(None),
               User.training_completed_on.is_(None),
               and_(User.vetting_expires_on.is_not(None), User.vetting_expires_on < today))


def _state_clause(state: str, today: date):
    if state == "active":
        return and_(User.active.is_(True), User.locked_at.is_(None), ~_vetting_problem_clause(today))
    if state == "disabled":
        return User.active.is_(False)
    if state == "locked":
        return User.locked_at.is_not(None)
    if state == "vetting":
        return _vetting_problem_clause(today)
    if state == "not_enrolled":
        return User.totp_enrolled_at.is_(None)
    raise ValueError(f"unknown account state {state!r}")


def find_accounts(session: Session, admin: User, words: str = "", state: str = "") -> tuple[list[User], int]:
    """The authority's accounts matching a name, username or email and a state; at most MAX_LISTED."""
    query = _accounts_of(admin)
    if words:
        query = query.where(or_(*(func.lower(column).contains(words.lower(), autoescape=True)
                                  for column in (User.full_name, User.email, User.username))))
    if state in STATES:
        query = query.where(_state_clause(state, now().date()))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    users = session.scalars(query.options(joinedload(User.organisation))
                            .order_by(User.full_name, User.id).limit(MAX_LISTED)).all()
    return users, total


def states_of(user: User, today: date) -> list[str]:
    """What stops the account being used, or "active"; and "not_enrolled" until an authenticator is set up."""
    found = [state for state, applies in (("disabled", not user.active), ("locked", user.locked_at is not None),
                                          ("vetting", user.vetting_problem(today) is not None)) if applies]
    found = found or ["active"]
    if user.totp_enrolled_at is None:
        found.append("not_enrolled")
    return found


def last_sign_in(session: Session, user: User) -> datetime | None:
    return session.scalar(select(func.max(AuditEvent.at)).where(AuditEvent.action == "signed_in",
                                                                AuditEvent.actor_id == user.id))


def live_sessions(session: Session, user: User, idle: timedelta) -> int:
    return session.scalar(select(func.count()).select_from(WebSession).where(
        WebSession.user_id == user.id, WebSession.revoked_at.is_(None), WebSession.last_seen_at >= now() - idle))


# ---------------------------------------------------------------- creating and editing accounts

def _email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(User.id).where(func.lower(User.email) == email.lower())) is not None


def _username_taken(session: Session, username: str) -> bool:
    name = username.lower()
    return session.scalar(select(User.id).where(
        or_(func.lower(User.username) == name, func.lower(User.email) == name))) is not None


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter a work email address"
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        return "Enter a work email address in the correct format, like name@school.example"
    if vetting.generic_mailbox(email):
        return "Enter the person's own work email, not a shared mailbox: one account per person"
    return None


def _details_problems(session: Session, admin: User, details: AccountDetails) -> dict[str, str]:
    problems = {}
    if not details.full_name:
        problems["full_name"] = "Enter the person's full name"
    elif len(details.full_name) > 200:
        problems["full_name"] = "The name must be 200 characters or fewer"
    if len(details.job_title) > 200:
        problems["job_title"] = "The job title must be 200 characters or fewer"
    if len(details.phone) > 40:
        problems["phone"] = "The phone number must be 40 characters or fewer"
    if details.organisation_id not in {o.id for o in organisations_of(session, admin)}:
        problems["organisation_id"] = "Select an organisation of your local authority"
    if details.role not in ROLES:
        problems["role"] = "Select a role"
    return problems


def username_problem(session: Session, username: str) -> str | None:
    if not _USERNAME.fullmatch(username):
        return ("Enter a username of 3 to 40 characters: lower-case letters, numbers, dots, hyphens or "
                "underscores, starting with a letter or number")
    if _username_taken(session, username):
        return "This username is already used: choose another"
    return None


def new_account_problems(session: Session, admin: User, account: NewAccount) -> dict[str, str]:
    problems = _details_problems(session, admin, account)
    problem = username_problem(session, account.username)
    if problem:
        problems["username"] = problem
    problem = email_problem(account.email)
    if problem is None and _email_taken(session, account.email):
        problem = "An account with this email already exists"
    if problem:
        problems["email"] = problem
    return problems


def _vetting_field(problem: str) -> str:
    """The form field a problem of `vetting.problems` is about."""
    for word, name in (("type", "kind"), ("reference", "reference"), ("expiry", "expires-on-day"),
                       ("training", "training-on-day")):
        if word in problem:
            return name
    return "checked-on-day"


def _account_problems(session: Session, admin: User, account: NewAccount, check: vetting.VettingCheck,
                      reason: str) -> dict[str, str]:
    problems = new_account_problems(session, admin, account)
    problems.update({_vetting_field(p): p for p in vetting.problems(check, now().date())})
    if not reason:
        problems["reason"] = "Enter why this account is needed"
    return problems


def _create(session: Session, admin: User, account: NewAccount, check: vetting.VettingCheck, reason: str,
            link_for: LinkFor, application_id: int | None = None) -> tuple[User, int]:
    user = User(username=account.username, email=account.email, full_name=account.full_name,
                job_title=account.job_title or None, phone=account.phone or None, role=account.role,
                organisation_id=account.organisation_id, active=True, created_at=now())
    session.add(user)
    session.flush()
    from_application = {"application_id": application_id} if application_id else {}
    audit.record(session, "account_created", actor_id=admin.id, user_id=user.id, role=user.role,
                 organisation_id=user.organisation_id, reason=reason, **from_application)
    vetting.record(session, user, check, by_id=admin.id)
    return user, _send_password_link(session, user, by_id=admin.id, link_for=link_for, welcome=True)


def create_account(session: Session, admin: User, account: NewAccount, check: vetting.VettingCheck,
                   reason: str, link_for: LinkFor) -> tuple[User | None, list[int], dict[str, str]]:
    """A new account with its vetting recorded, and a set-password link emailed to the person.

    Returns (user, outbox message ids, problems); with problems, nothing is created."""
    problems = _account_problems(session, admin, account, check, reason)
    if problems:
        return None, [], problems
    user, message_id = _create(session, admin, account, check, reason, link_for)
    return user, [message_id], {}


def edit_account(session: Session, admin: User, user: User, details: AccountDetails, reason: str) -> dict[str, str]:
    """Change name, job title, phone, organisation or role; an administrator keeps their own role."""
    problems = _details_problems(session, admin, details)
    if user.id == admin.id and details.role != user.role:
        problems["role"] = "You cannot change your own role: ask another administrator"
    if not reason:
        problems["reason"] = "Enter the reason for the change"
    if problems:
        return problems
    new = {"full_name": details.full_name, "job_title": details.job_title or None, "phone": details.phone or None,
           "organisation_id": details.organisation_id, "role": details.role}
    changed = sorted(name for name, value in new.items() if getattr(user, name) != value)
    if not changed:
        return {}
    extra = {"role_from": user.role, "role_to": details.role} if "role" in changed else {}
    for name in changed:
        setattr(user, name, new[name])
    audit.record(session, "account_edited", actor_id=admin.id, user_id=user.id, changed=changed, reason=reason,
                 **extra)
    return {}


# ---------------------------------------------------------------- administrators' actions on an account

def disable(session: Session, admin: User, user: User, reason: str, **_) -> Result:
    if not user.active:
        return Result(False, f"{user.full_name}'s account is already disabled. Nothing was changed.")
    user.active = False
    ended = end_all_sessions(session, user.id)
    audit.record(session, "account_disabled", actor_id=admin.id, user_id=user.id, reason=reason, sessions_ended=ended)
    return Result(True, f"{user.full_name}'s account is disabled and signed out everywhere.")


def enable(session: Session, admin: User, user: User, reason: str, **_) -> Result:
    if user.active:
        return Result(False, f"{user.full_name}'s account is not disabled. Nothing was changed.")
    user.active = True
    audit.record(session, "account_enabled", actor_id=admin.id, user_id=user.id, reason=reason)
    return Result(True, f"{user.full_name}'s account is enabled.")


def unlock(session: Session, admin: User, user: User, reason: str, **_) -> Result:
    if user.locked_at is None and not user.failed_sign_ins:
        return Result(False, f"{user.full_name}'s account is not locked. Nothing was changed.")
    sign_in.unlock(session, user, admin.id, reason)
    return Result(True, f"{user.full_name}'s account is unlocked.")


def revoke_sessions(session: Session, admin: User, user: User, reason: str, **_) -> Result:
    ended = end_all_sessions(session, user.id)
    if not ended:
        return Result(False, f"{user.full_name} is not signed in anywhere. Nothing was changed.")
    audit.record(session, "sessions_revoked", actor_id=admin.id, user_id=user.id, reason=reason, sessions_ended=ended)
    return Result(True, f"{user.full_name} is signed out everywhere ({ended} session{'s' if ended != 1 else ''}).")


def reset_authenticator(session: Session, admin: User, user: User, reason: str, **_) -> Result:
    """The user sets up a new authenticator at their next sign-in (enrolment follows a missing one)."""
    if user.totp_enrolled_at is None and user.totp_secret is None:
        return Result(False, f"{user.full_name} has not set up an authenticator yet. Nothing was changed.")
    user.totp_secret = user.totp_enrolled_at = user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = end_all_sessions(session, user.id)
    audit.record(session, "authenticator_reset", actor_id=admin.id, user_id=user.id, reason=reason,
                 sessions_ended=ended)
    return Result(True, f"{user.full_name}'s authenticator is reset: they set up a new one when they next sign in.")


def reset_password(session: Session, admin: User, user: User, reason: str, *, link_for: LinkFor, **_) -> Result:
    if not user.active:
        return Result(False, f"{user.full_name}'s account is disabled: enable it before sending a password link. "
                             "Nothing was changed.")
    message_id = _send_password_link(session, user, by_id=admin.id, link_for=link_for, welcome=False)
    audit.record(session, "password_reset_sent", actor_id=admin.id, user_id=user.id, reason=reason)
    return Result(True, f"A link to set a new password has been emailed to {user.email}. It works once, "
                        f"within {RESET_LINK_HOURS} hours.", [message_id])


ACTIONS = {"disable": disable, "enable": enable, "unlock": unlock, "revoke_sessions": revoke_sessions,
           "reset_authenticator": reset_authenticator, "reset_password": reset_password}
# An administrator's own sign-in is changed from their own account page, never from these.
NOT_ON_YOURSELF = {"disable", "revoke_sessions", "reset_authenticator", "reset_password"}


def act(session: Session, admin: User, user: User, action: str, reason: str, *,
        link_for: LinkFor | None = None) -> Result | str:
    """Do `action` to the account; a string is a refusal (nothing changed)."""
    if not reason:
        return "Enter the reason for this action"
    if action in NOT_ON_YOURSELF and user.id == admin.id:
        return ("You cannot do this to your own account here. Use your account page, or ask another "
                "administrator.")
    return ACTIONS[action](session, admin, user, reason, link_for=link_for)


# ---------------------------------------------------------------- one-time links to set a password

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _contacts(user: User) -> str:
    authority = user.authority
    parts = [authority.admin_phone if authority else None, authority.admin_email if authority else None]
    known = [p for p in parts if p]
    return f"the eCAF administrator ({', '.join(known)})" if known else "the eCAF administrator"


def _send_password_link(session: Session, user: User, *, by_id: int, link_for: LinkFor, welcome: bool) -> int:
    """A new one-time link for `user` (earlier unused ones stop working), queued as an email."""
    moment = now()
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None),
                                                PasswordReset.expires_at > moment)
                    .values(expires_at=moment))
    token = secrets.token_urlsafe(32)
    reset = PasswordReset(user_id=user.id, token_hash=_digest(token), created_at=moment,
                          expires_at=moment + RESET_LINK_LIFETIME, created_by_id=by_id)
    session.add(reset)
    session.flush()
    if welcome:
        subject = "Your eCAF account: set your password"
        opening = (f"An eCAF account has been created for you. Your username is {user.username}.\n\n"
                   f"Set your password with this link. It works once, within {RESET_LINK_HOURS} hours:")
        after = ("When you first sign in you will set up an authenticator app on your work phone. Complete "
                 "your eCAF training before you use the service.")
    else:
        subject = "Set a new eCAF password"
        opening = ("The eCAF administrator has sent you a link to set a new password. It works once, "
                   f"within {RESET_LINK_HOURS} hours:")
        after = "Setting a new password signs you out on every device."
    body = (f"Hello {user.full_name},\n\n{opening}\n\n{link_for(token)}\n\n{after}\n\n"
            f"If the link has stopped working, or you did not expect this email, contact {_contacts(user)}.\n")
    message = outbox.queue_email(session, kind="account_welcome" if welcome else "password_reset",
                                 recipient=user.email, subject=subject, body=body, key=f"password-reset:{reset.id}")
    return message.id


def usable_reset(session: Session, token: str) -> PasswordReset | None:
    """The link's record if it is known, unused, unexpired and its account enabled; else None."""
    if not token or len(token) > 100:
        return None
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _digest(token)))
    if reset is None or reset.used_at is not None or as_utc(reset.expires_at) <= now():
        return None
    user = session.get(User, reset.user_id)
    return reset if user is not None and user.active else None


def complete_reset(session: Session, reset: PasswordReset, new_password: str, confirm: str) -> dict[str, str]:
    """Set the password once: the link is spent, every session ends and failed sign-ins are forgotten."""
    user = session.get(User, reset.user_id)
    problem = passwords.password_problem(new_password, context_words=(user.username, user.full_name,
                                                                      user.email.split("@")[0]))
    if problem:
        return {"new_password": problem}
    if new_password != confirm:
        return {"confirm_password": "Enter the same password twice"}
    spent = session.execute(update(PasswordReset).where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
                            .values(used_at=now()))
    if spent.rowcount != 1:  # another request used the link first
        return {"link": "used"}
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = now()
    user.failed_sign_ins, user.last_failed_at = 0, None
    ended = end_all_sessions(session, user.id)
    audit.record(session, "password_reset_completed", actor_id=user.id, reset_id=reset.id, sessions_ended=ended)
    return {}


# ---------------------------------------------------------------- applications for an account

def _application_problems(session: Session, application: Application) -> dict[str, str]:
    problems = {}
    if not application.full_name:
        problems["full_name"] = "Enter your full name"
    problem = email_problem(application.email)
    if problem:
        problems["email"] = problem.replace("the person's own", "your own")
    if not application.job_title:
        problems["job_title"] = "Enter your job title"
    if not application.phone:
        problems["phone"] = "Enter your work phone number"
    if application.organisation_id is None or session.get(Organisation, application.organisation_id) is None:
        problems["organisation_id"] = "Select the organisation you work for"
    if not application.manager_name:
        problems["manager_name"] = "Enter your manager's name"
    if not _EMAIL.fullmatch(application.manager_email or "") or len(application.manager_email) > 254:
        problems["manager_email"] = "Enter your manager's work email address, like name@school.example"
    elif application.manager_email.lower() == application.email.lower():
        problems["manager_email"] = "Enter your manager's email address, not your own"
    if not application.reason:
        problems["reason"] = "Enter why you need to use eCAF"
    for name in ("full_name", "job_title", "manager_name"):
        if len(getattr(application, name)) > 200:
            problems[name] = "This must be 200 characters or fewer"
    if len(application.phone) > 40:
        problems["phone"] = "The phone number must be 40 characters or fewer"
    return problems


def _already_known(session: Session, email: str) -> bool:
    pending = session.scalar(select(AccountApplication.id).where(
        func.lower(AccountApplication.email) == email.lower(), AccountApplication.status == "pending"))
    return pending is not None or _email_taken(session, email)


def apply(session: Session, application: Application) -> tuple[dict[str, str], list[int]]:
    """Record a pending application; returns (problems, outbox message ids).

    An email that has an account or a pending application already gets the same answer, but nothing
    is created: the form must not reveal who has an account."""
    problems = _application_problems(session, application)
    if problems or _already_known(session, application.email):
        return problems, []
    row = AccountApplication(full_name=application.full_name, email=application.email,
                             job_title=application.job_title, phone=application.phone,
                             organisation_id=application.organisation_id, manager_name=application.manager_name,
                             manager_email=application.manager_email, reason=application.reason,
                             status="pending", submitted_at=now())
    session.add(row)
    session.flush()
    audit.record(session, "account_applied", actor_id=None, application_id=row.id,
                 organisation_id=row.organisation_id)
    return {}, _tell_administrators(session, row)


def _tell_administrators(session: Session, application: AccountApplication) -> list[int]:
    """No link in this email: an address built from an applicant's request could point anywhere."""
    authority = session.get(Organisation, application.organisation_id).authority
    if not authority.admin_email:
        return []  # the applications list shows it all the same
    message = outbox.queue_email(
        session, kind="account_application_received", recipient=authority.admin_email,
        subject="An eCAF account application is waiting",
        body=("Someone has applied for an eCAF account. Sign in to eCAF and open Accounts, then the applications "
              "waiting for a decision. Check the application with the applicant's manager, then approve or "
              "reject it.\n"),
        key=f"account-application-received:{application.id}")
    return [message.id]


def _applications_of(admin: User):
    return (select(AccountApplication).join(Organisation, AccountApplication.organisation_id == Organisation.id)
            .where(Organisation.authority_id == policy.authority_id_of(admin)))


def pending_applications(session: Session, admin: User) -> list[AccountApplication]:
    return session.scalars(_applications_of(admin).where(AccountApplication.status == "pending")
                           .options(joinedload(AccountApplication.organisation))
                           .order_by(AccountApplication.submitted_at, AccountApplication.id)).all()


def pending_count(session: Session, admin: User) -> int:
    return session.scalar(select(func.count()).select_from(
        _applications_of(admin).where(AccountApplication.status == "pending").subquery()))


def application_of(session: Session, admin: User, application_id: int) -> AccountApplication | None:
    return session.scalar(_applications_of(admin).where(AccountApplication.id == application_id)
                          .options(joinedload(AccountApplication.organisation)))


def suggested_username(session: Session, email: str) -> str:
    """The email's local part, made a valid username, with a number added if it is taken."""
    base = re.sub(r"[^a-z0-9._-]", "", email.split("@", 1)[0].lower()).lstrip("._-")[:36] or "user"
    base = base if len(base) >= 3 else f"{base}user"
    candidate, number = base, 2
    while _username_taken(session, candidate):
        candidate, number = f"{base}{number}", number + 1
    return candidate


def _decide(session: Session, application: AccountApplication, admin: User, status: str, reason: str) -> bool:
    """Record the decision once: False when another administrator decided first."""
    decided = session.execute(update(AccountApplication).where(AccountApplication.id == application.id,
                                                               AccountApplication.status == "pending")
                              .values(status=status, decided_at=now(), decided_by_id=admin.id,
                                      decision_reason=reason))
    session.refresh(application)
    return decided.rowcount == 1


ALREADY_DECIDED = "This application has already been decided: it cannot be decided again"


def approve(session: Session, admin: User, application: AccountApplication, username: str, role: str,
            check: vetting.VettingCheck, reason: str, link_for: LinkFor) -> tuple[list[int], dict[str, str]]:
    """Create the account the application asked for, as `create_account` does."""
    if application.status != "pending":
        return [], {"decision": ALREADY_DECIDED}
    account = NewAccount(full_name=application.full_name, job_title=application.job_title or "",
                         phone=application.phone or "", organisation_id=application.organisation_id, role=role,
                         username=username, email=application.email)
    problems = _account_problems(session, admin, account, check, reason)
    if "email" in problems:
        problems["decision"] = f"{problems.pop('email')}: reject this application"
    if "reason" in problems:
        problems["approve_reason"] = "Enter the reason for approving the application"
        del problems["reason"]
    if problems:
        return [], problems
    if not _decide(session, application, admin, "approved", reason):
        return [], {"decision": ALREADY_DECIDED}
    user, message_id = _create(session, admin, account, check, reason, link_for, application.id)
    application.user_id = user.id
    audit.record(session, "account_application_approved", actor_id=admin.id, application_id=application.id,
                 user_id=user.id, reason=reason)
    return [message_id], {}


def reject(session: Session, admin: User, application: AccountApplication, reason: str
           ) -> tuple[list[int], dict[str, str]]:
    """Refuse the application and tell the applicant politely (the reason stays in the audit trail)."""
    if application.status != "pending":
        return [], {"decision": ALREADY_DECIDED}
    if not reason:
        return [], {"reject_reason": "Enter the reason for rejecting the application"}
    if not _decide(session, application, admin, "rejected", reason):
        return [], {"decision": ALREADY_DECIDED}
    authority = application.organisation.authority
    contact = ", ".join(p for p in (authority.admin_phone, authority.admin_email) if p)
    message = outbox.queue_email(
        session, kind="account_application_rejected", recipient=application.email,
        subject="Your application for an eCAF account",
        body=(f"Hello {application.full_name},\n\nThank you for applying for an eCAF account. We are sorry, but "
              "your application has not been approved.\n\nIf you think you need eCAF for your work, please speak "
              "to your manager, then contact the eCAF administrator"
              f"{f' ({contact})' if contact else ''}.\n"),
        key=f"account-application-rejected:{application.id}")
    audit.record(session, "account_application_rejected", actor_id=admin.id, application_id=application.id,
                 reason=reason)
    return [message.id], {}
