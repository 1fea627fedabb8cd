"""The services directory: each authority's targeted and specialist services and their teams.

A request to one of these services must carry the evidence the service lists, or it is delayed or
redirected, so every service says plainly what it needs. Administrators keep the directory of their
own authority; every change is audited with them as the actor. Functions that change something
check everything first and return the problems instead, so a refusal changes nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app import audit, policy
from app.policy import directory as directory_policy
from app.clock import now
from app.models import Organisation, Service, ServiceTeamMember, User

MAX_NAME, MAX_OFFERS, MAX_CONTACT, MAX_EMAIL, MAX_PHONE = 200, 2000, 200, 254, 40
MAX_EVIDENCE_LINES, MAX_EVIDENCE_LINE = 20, 200
RESPONSE_DAYS = range(1, 61)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class ServiceDetails:
    """What an administrator says about a service, as typed (the response time is checked here)."""

    name: str
    offers: str
    contact_name: str
    contact_email: str
    contact_phone: str
    required_evidence: list[str]
    response_working_days: str
    active: bool = True


def evidence_lines(typed: str) -> list[str]:
    """One piece of evidence a line: blank lines and surrounding spaces are left out."""
    return [line.strip() for line in typed.splitlines() if line.strip()]


# ---------------------------------------------------------------- reading the directory

def services_of(session: Session, user: User, *, active_only: bool = True) -> list[Service]:
    """The services of the reader's authority by name, with their team members."""
    query = (select(Service).where(directory_policy.directory_clause(user))
             .options(selectinload(Service.members).selectinload(ServiceTeamMember.user))
             .order_by(Service.name))
    if active_only:
        query = query.where(Service.active.is_(True))
    return list(session.scalars(query))


def service_of(session: Session, user: User, service_id: int) -> Service | None:
    """The service if it belongs to the user's authority, else None (the caller answers 404)."""
    return session.scalar(select(Service).where(Service.id == service_id, directory_policy.directory_clause(user))
                          .options(selectinload(Service.members).selectinload(ServiceTeamMember.user)))


# ---------------------------------------------------------------- creating and editing services

def _name_taken(session: Session, authority_id: int, name: str, except_id: int | None) -> bool:
    query = select(Service.id).where(Service.authority_id == authority_id, func.lower(Service.name) == name.lower())
    if except_id is not None:
        query = query.where(Service.id != except_id)
    return session.scalar(query) is not None


def _response_days(typed: str) -> int | None:
    value = typed.strip()
    return int(value) if value.isdigit() and int(value) in RESPONSE_DAYS else None


def _contact_problems(details: ServiceDetails) -> dict[str, str]:
    problems = {}
    if not details.contact_name:
        problems["contact_name"] = "Enter the name of the person or team to contact"
    elif len(details.contact_name) > MAX_CONTACT:
        problems["contact_name"] = f"The contact name must be {MAX_CONTACT} characters or fewer"
    if not details.contact_email and not details.contact_phone:
        problems["contact_email"] = "Enter a contact email address or telephone number"
    elif details.contact_email and (len(details.contact_email) > MAX_EMAIL
                                    or not _EMAIL.fullmatch(details.contact_email)):
        problems["contact_email"] = "Enter an email address in the correct format, like team@council.example"
    if len(details.contact_phone) > MAX_PHONE:
        problems["contact_phone"] = f"The telephone number must be {MAX_PHONE} characters or fewer"
    return problems


def _evidence_problem(lines: list[str]) -> str | None:
    if not lines:
        return "Enter the evidence a request must include, one item a line"
    if len(lines) > MAX_EVIDENCE_LINES:
        return f"List {MAX_EVIDENCE_LINES} items of evidence or fewer"
    if any(len(line) > MAX_EVIDENCE_LINE for line in lines):
        return f"Each item of evidence must be {MAX_EVIDENCE_LINE} characters or fewer"
    if len({line.lower() for line in lines}) != len(lines):
        return "List each item of evidence once"
    return None


def details_problems(session: Session, authority_id: int, details: ServiceDetails,
                     except_id: int | None = None) -> dict[str, str]:
    """What is wrong with the details, by form field; empty when they can be saved."""
    problems = {}
    if not details.name:
        problems["name"] = "Enter the name of the service"
    elif len(details.name) > MAX_NAME:
        problems["name"] = f"The name must be {MAX_NAME} characters or fewer"
    elif _name_taken(session, authority_id, details.name, except_id):
        problems["name"] = "Your local authority already has a service with this name"
    if not details.offers:
        problems["offers"] = "Enter what the service offers"
    elif len(details.offers) > MAX_OFFERS:
        problems["offers"] = f"What the service offers must be {MAX_OFFERS} characters or fewer"
    problems.update(_contact_problems(details))
    problem = _evidence_problem(details.required_evidence)
    if problem:
        problems["required_evidence"] = problem
    if _response_days(details.response_working_days) is None:
        problems["response_working_days"] = (f"Enter the response time as a whole number of working days, "
                                             f"from {RESPONSE_DAYS[0]} to {RESPONSE_DAYS[-1]}")
    return problems


def _values(details: ServiceDetails) -> dict:
    return {"name": details.name, "offers": details.offers, "contact_name": details.contact_name,
            "contact_email": details.contact_email.lower() or None, "contact_phone": details.contact_phone or None,
            "required_evidence": list(details.required_evidence),
            "response_working_days": _response_days(details.response_working_days), "active": details.active}


def create_service(session: Session, admin: User, details: ServiceDetails) -> tuple[Service | None, dict[str, str]]:
    """A new service of the administrator's authority; returns (service, problems)."""
    authority_id = policy.authority_id_of(admin)
    if authority_id is None:  # an account outside every organisation: no directory to add to
        return None, {"name": "Your account belongs to no local authority, so it cannot add services"}
    problems = details_problems(session, authority_id, details)
    if problems:
        return None, problems
    service = Service(authority_id=authority_id, **_values(details))
    session.add(service)
    session.flush()
    audit.record(session, "service_created", actor_id=admin.id, service_id=service.id, name=service.name)
    return service, {}


def edit_service(session: Session, admin: User, service: Service, details: ServiceDetails) -> dict[str, str]:
    """Change a service's details; saving what is already there changes and records nothing."""
    problems = details_problems(session, service.authority_id, details, except_id=service.id)
    if problems:
        return problems
    new = _values(details)
    changed = sorted(name for name, value in new.items() if getattr(service, name) != value)
    if changed:
        for name in changed:
            setattr(service, name, new[name])
        audit.record(session, "service_changed", actor_id=admin.id, service_id=service.id, changed=changed)
    return {}


# ---------------------------------------------------------------- team members

def _account_by_email(session: Session, service: Service, email: str) -> User | None:
    return session.scalar(select(User).join(Organisation, User.organisation_id == Organisation.id)
                          .where(directory_policy.team_candidate_clause(service),
                                 func.lower(User.email) == email.lower()))


def add_member(session: Session, admin: User, service: Service, email: str) -> tuple[User | None, dict[str, str]]:
    """Add a service team account of the service's authority, found by its work email."""
    if not email:
        return None, {"email": "Enter the work email address of the team member"}
    user = _account_by_email(session, service, email)
    if user is None:
        return None, {"email": "There is no account with this email in your local authority"}
    if not directory_policy.may_join_service_team(user):
        return None, {"email": f"{user.full_name} does not have a service team account: "
                               f"change their role on the accounts page first"}
    if any(member.user_id == user.id for member in service.members):
        return None, {"email": f"{user.full_name} is already a member of this service"}
    service.members.append(ServiceTeamMember(user_id=user.id, added_at=now()))
    session.flush()
    audit.record(session, "service_member_added", actor_id=admin.id, service_id=service.id, user_id=user.id)
    return user, {}


def remove_member(session: Session, admin: User, service: Service, member_id: int) -> User | None:
    """Remove one member of this service; None when the service has no such member."""
    member = next((m for m in service.members if m.id == member_id), None)
    if member is None:
        return None
    user = member.user
    service.members.remove(member)
    session.flush()
    audit.record(session, "service_member_removed", actor_id=admin.id, service_id=service.id, user_id=user.id)
    return user
