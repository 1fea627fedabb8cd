"""Append-only audit trail. Callers pass the session of the change they record."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.clock import now
from app.models import AuditEvent


def record(session: Session, action: str, *, actor_id: int | None = None,
           episode_id: int | None = None, **detail) -> AuditEvent:
    event = AuditEvent(at=now(), actor_id=actor_id, action=action, episode_id=episode_id,
                       detail=detail or None)
    session.add(event)
    return event
