"""Vetting: an account is usable only with a current vetting check and recorded eCAF training (N4).

An administrator records the check (type, reference, date checked, expiry) and the training date;
when the check expires the account is suspended until a new one is recorded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app import audit
from app.clock import now
from app.models import VETTING_TYPES, User

# Shared mailboxes name a team, not a person: one account per person means none of these.
GENERIC_MAILBOXES = {"admin", "enquiries", "office", "info", "team", "reception", "contact", "general",
                     "mail", "help", "support", "hello", "noreply", "no-reply", "schooloffice", "headteacher"}


def generic_mailbox(email: str) -> bool:
    local = email.split("@", 1)[0].lower()
    return local in GENERIC_MAILBOXES or re.fullmatch(r"(team|office|admin)[._-].*", local) is not None


@dataclass
class VettingCheck:
    kind: str
    reference: str
    checked_on: date
    expires_on: date | None
    training_on: date


def problems(check: VettingCheck, today: date) -> list[str]:
    found = []
    if check.kind not in VETTING_TYPES:
        found.append(f"Choose a vetting check type: {', '.join(VETTING_TYPES)}")
    if not check.reference.strip():
        found.append("Enter the vetting check's reference number")
    if check.checked_on > today:
        found.append("The date of the vetting check must be today or in the past")
    if check.expires_on is not None and check.expires_on <= check.checked_on:
        found.append("The expiry date must be after the date of the check")
    if check.training_on > today:
        found.append("The training date must be today or in the past")
    return found


def record(session: Session, user: User, check: VettingCheck, *, by_id: int | None) -> list[str]:
    """Record the check; returns the problems instead when it is not acceptable (nothing changes)."""
    found = problems(check, now().date())
    if found:
        return found
    user.vetting_type, user.vetting_reference = check.kind, check.reference.strip()
    user.vetting_checked_on, user.vetting_expires_on = check.checked_on, check.expires_on
    user.training_completed_on = check.training_on
    user.vetting_recorded_by_id, user.vetting_recorded_at = by_id, now()
    audit.record(session, "vetting_recorded", actor_id=by_id, user_id=user.id, vetting_type=check.kind,
                 reference=check.reference.strip(), checked_on=check.checked_on.isoformat(),
                 expires_on=check.expires_on.isoformat() if check.expires_on else None,
                 training_on=check.training_on.isoformat())
    return []
