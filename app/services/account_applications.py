"""The public application for an account, and the administrators' queue that approves or rejects it.

An approved application becomes an account exactly as an administrator's new account does
(`accounts.add_account`), with the same checks, the role rule included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from app import audit, outbox, policy
from app.accounts import vetting
from app.clock import now
from app.models import AccountApplication, Authority, Organisation, User
from app.services import accounts


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


def organisations_by_authority(session: Session) -> list[tuple[Authority, list[Organisation]]]:
    """Every organisation, grouped under its local authority (the public application form's list)."""
    rows = session.scalars(select(Organisation).join(Authority).options(joinedload(Organisation.authority))
                           .order_by(Authority.name, Organisation.name)).all()
    grouped: dict[int, tuple[Authority, list[Organisation]]] = {}
    for organisation in rows:
        grouped.setdefault(organisation.authority_id, (organisation.authority, []))[1].append(organisation)
    return list(grouped.values())


def _application_problems(session: Session, application: Application) -> dict[str, str]:
    problems = {}
    if not application.full_name:
        problems["full_name"] = "Enter your full name"
    problem = accounts.email_problem(application.email)
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
    manager_email = application.manager_email or ""
    if not accounts.EMAIL_FORMAT.fullmatch(manager_email) or len(manager_email) > 254:
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
    return pending is not None or accounts.email_taken(session, email)


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
            .where(policy.authority_clause(admin, Organisation.authority_id)))


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
    while accounts.username_taken(session, candidate):
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
            check: vetting.VettingCheck, reason: str, link_for: accounts.LinkFor) -> tuple[list[int], dict[str, str]]:
    """Create the account the application asked for, as `create_account` does."""
    if application.status != "pending":
        return [], {"decision": ALREADY_DECIDED}
    account = accounts.NewAccount(full_name=application.full_name, job_title=application.job_title or "",
                         phone=application.phone or "", organisation_id=application.organisation_id, role=role,
                         username=username, email=application.email)
    problems = accounts.account_problems(session, admin, account, check, reason, application_id=application.id)
    if "email" in problems:
        problems["decision"] = f"{problems.pop('email')}: reject this application"
    if "reason" in problems:
        problems["approve_reason"] = "Enter the reason for approving the application"
        del problems["reason"]
    if problems:
        return [], problems
    if not _decide(session, application, admin, "approved", reason):
        return [], {"decision": ALREADY_DECIDED}
    user, message_id = accounts.add_account(session, admin, account, check, reason, link_for, application.id)
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
