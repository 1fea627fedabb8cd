"""The people a form's `person` answer offers (the lead professional): chosen, not typed.

Those at the Team Around the Child meeting and those working on the CAF who have an active eCAF
account and could take the part (`policy.lead_refusal`), each shown with the name, role and
organisation of their account. "Someone else" stays possible: the answer is still an email that the
form's `ecaf-user-email` format checks on the server, whoever was chosen (`refusal`: the same rule).
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app import membership, policy
from app.clock import now
from app.forms.schema_reading import ui_at
from app.models import Artefact, Episode, User

PERSON_WIDGET = "person"
# Said alike of an email with no account and of an account the appointer may not learn about.
NOT_A_LEAD = "Enter the email address of a practitioner who can lead this CAF"


def offer(session: Session, episode: Episode, schema: dict, ui: dict | None) -> dict | None:
    """`ui` with `ui:people` set on each `person` answer; the UI schema itself is left untouched
    (it is shared by every episode of the process version)."""
    asking = [name for name in (schema.get("properties") or {}) if ui_at(ui, name).get("ui:widget") == PERSON_WIDGET]
    if not asking:
        return ui
    listed = [_choice(user, at_meeting) for user, at_meeting in candidates(session, episode)]
    return {**(ui or {}), **{name: {**ui_at(ui, name), "ui:people": listed} for name in asking}}


def candidates(session: Session, episode: Episode) -> list[tuple[User, bool]]:
    """(account, was at the TAC meeting): the meeting's people first, in the order recorded."""
    met = [str(data.get("email") or "").strip().lower() for data in session.scalars(
        select(Artefact.data).where(Artefact.episode_id == episode.id, Artefact.kind == "contact")
        .order_by(Artefact.id)) if isinstance(data, dict) and data.get("source") == "tac_meeting"]
    member_ids = [m.user_id for m in membership.current(session, episode)]
    today = now().date()
    usable = policy.usable_clause(today)  # a disabled or locked account is never offered
    by_email = {u.email.lower(): u for u in session.scalars(
        select(User).options(joinedload(User.organisation))
        .where(func.lower(User.email).in_([e for e in met if e]), usable))} if any(met) else {}
    members = {u.id: u for u in session.scalars(
        select(User).options(joinedload(User.organisation)).where(User.id.in_(member_ids), usable))} \
        if member_ids else {}
    ordered = [(by_email[e], True) for e in dict.fromkeys(met) if e in by_email]
    ordered += [(members[i], False) for i in dict.fromkeys(member_ids) if i in members]
    seen, found = set(), []
    for user, at_meeting in ordered:
        if user.id in seen:
            continue
        seen.add(user.id)
        if policy.lead_refusal(session, user, episode, today) is None:
            found.append((user, at_meeting))
    return found


def _choice(user: User, at_meeting: bool) -> dict:
    about = [user.job_title, user.organisation.name if user.organisation else None]
    hint = ", ".join(part for part in about if part)
    if at_meeting:
        hint = f"{hint} (at the TAC meeting)" if hint else "At the TAC meeting"
    return {"value": user.email, "text": user.full_name, "hint": hint}


def refusal(session: Session, episode: Episode, email: str) -> str | None:
    """Why the email typed cannot name the episode's lead professional (None: it can). The reason
    is given only of the episode's own people; of anyone else, not even whether the account exists."""
    named = session.scalar(select(User).options(joinedload(User.organisation))
                           .where(func.lower(User.email) == email.strip().lower()).limit(1))
    problem = policy.lead_refusal(session, named, episode, now().date()) if named is not None else NOT_A_LEAD
    if problem is None:
        return None
    if named is None or not policy.may_hear_why_not_lead(session, named, episode):
        return NOT_A_LEAD
    return f"{named.full_name} cannot lead this CAF: {problem}"
