"""Administrators' account management (applications for an account: `account_applications`).

Administrators manage the accounts of their own authority only (users whose organisation belongs
to it). Every change they make carries a reason and is audited in the same transaction. Passwords
are never chosen or seen by an administrator: a one-time link is emailed (`password_links`).

Functions that change something check everything first and return the problems instead when
there are any, so a refusal leaves nothing changed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, joinedload

from app import audit, policy
from app.accounts import sign_in, vetting
from app.clock import now
from app.models import ROLES, AuditEvent, Organisation, RecoveryCode, User, WebSession
from app.services import password_links
from app.services.password_links import RESET_LINK_HOURS, LinkFor
from app.web.sessions import end_all_sessions

ROLE_LABELS = {"practitioner": "Practitioner", "administrator": "eCAF administrator",
               "process_owner": "Process owner", "service_team": "Service team"}
STATES = {"active": "Active", "disabled": "Disabled", "locked": "Locked",
          "vetting": "Cannot sign in because of vetting", "not_enrolled": "Not yet enrolled"}
MAX_LISTED = 200
EMAIL_FORMAT = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")
NATIONAL_ROLE_HINT = "Process owners are appointed nationally"
GRANT_REFUSED = f"{NATIONAL_ROLE_HINT}: only an operator can make an account a process owner"
REMOVE_REFUSED = f"{NATIONAL_ROLE_HINT}: only an operator can change the role of a process owner"


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
class Result:
    """What an administrator's action did: `changed` is False for a no-op, which changes nothing."""

    changed: bool
    message: str
    message_ids: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- which accounts an administrator manages

def _accounts_of(admin: User):
    return (select(User).join(Organisation, User.organisation_id == Organisation.id)
            .where(policy.authority_clause(admin, Organisation.authority_id)))


def account_of(session: Session, admin: User, user_id: int) -> User | None:
    """The account if it belongs to the administrator's authority, else None (the caller answers 404)."""
    return session.scalar(_accounts_of(admin).where(User.id == user_id)
                          .options(joinedload(User.organisation)))


def organisations_of(session: Session, admin: User) -> list[Organisation]:
    return session.scalars(select(Organisation).where(policy.authority_clause(admin, Organisation.authority_id))
                           .order_by(Organisation.name)).all()


def _state_clause(state: str, today: date):
    if state == "active":
        return policy.usable_clause(today)
    if state == "disabled":
        return User.active.is_(False)
    if state == "locked":
        return User.locked_at.is_not(None)
    if state == "vetting":
        return policy.vetting_problem_clause(today)
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

def email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(User.id).where(func.lower(User.email) == email.lower())) is not None


def username_taken(session: Session, username: str) -> bool:
    name = username.lower()
    return session.scalar(select(User.id).where(
        or_(func.lower(User.username) == name, func.lower(User.email) == name))) is not None


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter a work email address"
    if len(email) > 254 or not EMAIL_FORMAT.fullmatch(email):
        return "Enter a work email address in the correct format, like name@school.example"
    if vetting.generic_mailbox(email):
        return "Enter the person's own work email, not a shared mailbox: one account per person"
    return None


def offered_roles(admin: User) -> list[str]:
    """The roles the administrator may give: the only ones their account pages offer."""
    return [role for role in ROLES if policy.may_grant_role(admin, role)]


def role_problem(session: Session, admin: User, role: str, *, current: str | None = None, **about) -> str | None:
    """Why `admin` may not give `role` to an account whose role is `current` (None: a new account), or None.

    A refusal is audited here: the page's transaction commits it as it answers with the form, so a
    forged post leaves its trace even though it changes nothing."""
    if role == current or role not in ROLES:
        return None
    if current is not None and not policy.may_grant_role(admin, current):
        problem = REMOVE_REFUSED
    elif not policy.may_grant_role(admin, role):
        problem = GRANT_REFUSED
    else:
        return None
    audit.record(session, "role_change_refused", actor_id=admin.id, role_from=current, role_to=role, **about)
    return problem


def _details_problems(session: Session, admin: User, details: AccountDetails, *, current: str | None = None,
                      **about) -> dict[str, str]:
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
    problem = role_problem(session, admin, details.role, current=current, **about)
    if problem:
        problems["role"] = problem
    return problems


def username_problem(session: Session, username: str) -> str | None:
    if not _USERNAME.fullmatch(username):
        return ("Enter a username of 3 to 40 characters: lower-case letters, numbers, dots, hyphens or "
                "underscores, starting with a letter or number")
    if username_taken(session, username):
        return "This username is already used: choose another"
    return None


def new_account_problems(session: Session, admin: User, account: NewAccount, **about) -> dict[str, str]:
    """`about`: what a refused role's audit row names besides the username (an application's id)."""
    problems = _details_problems(session, admin, account, username=account.username, **about)
    problem = username_problem(session, account.username)
    if problem:
        problems["username"] = problem
    problem = email_problem(account.email)
    if problem is None and email_taken(session, account.email):
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


def account_problems(session: Session, admin: User, account: NewAccount, check: vetting.VettingCheck,
                     reason: str, **about) -> dict[str, str]:
    problems = new_account_problems(session, admin, account, **about)
    problems.update({_vetting_field(p): p for p in vetting.problems(check, now().date())})
    if not reason:
        problems["reason"] = "Enter why this account is needed"
    return problems


def add_account(session: Session, admin: User, account: NewAccount, check: vetting.VettingCheck, reason: str,
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
    return user, password_links.send(session, user, by_id=admin.id, link_for=link_for, welcome=True)


def create_account(session: Session, admin: User, account: NewAccount, check: vetting.VettingCheck,
                   reason: str, link_for: LinkFor) -> tuple[User | None, list[int], dict[str, str]]:
    """A new account with its vetting recorded, and a set-password link emailed to the person.

    Returns (user, outbox message ids, problems); with problems, nothing is created."""
    problems = account_problems(session, admin, account, check, reason)
    if problems:
        return None, [], problems
    user, message_id = add_account(session, admin, account, check, reason, link_for)
    return user, [message_id], {}


def edit_account(session: Session, admin: User, user: User, details: AccountDetails, reason: str) -> dict[str, str]:
    """Change name, job title, phone, organisation or role; an administrator keeps their own role, and
    a process owner's role is not theirs to change."""
    problems = _details_problems(session, admin, details, current=user.role, user_id=user.id)
    if details.role != user.role and not policy.may_change_role_of(admin, user):
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
    if not policy.may_get_password_link(user):
        return Result(False, f"{user.full_name}'s account is disabled: enable it before sending a password link. "
                             "Nothing was changed.")
    message_id = password_links.send(session, user, by_id=admin.id, link_for=link_for, welcome=False)
    audit.record(session, "password_reset_sent", actor_id=admin.id, user_id=user.id, reason=reason)
    return Result(True, f"A link to set a new password has been emailed to {user.email}. It works once, "
                        f"within {RESET_LINK_HOURS} hours.", [message_id])


ACTIONS = {"disable": disable, "enable": enable, "unlock": unlock, "revoke_sessions": revoke_sessions,
           "reset_authenticator": reset_authenticator, "reset_password": reset_password}


def act(session: Session, admin: User, user: User, action: str, reason: str, *,
        link_for: LinkFor | None = None) -> Result | str:
    """Do `action` to the account; a string is a refusal (nothing changed)."""
    if not reason:
        return "Enter the reason for this action"
    if not policy.may_act_on_account(admin, user, action):
        return ("You cannot do this to your own account here. Use your account page, or ask another "
                "administrator.")
    return ACTIONS[action](session, admin, user, reason, link_for=link_for)
