"""The service status page's figures: open episodes by stage, what the engine waits for, messages
not yet sent. Every figure is of the administrator's own authority, through the policy's episode
filter: nothing is counted across authorities (no national role exists)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import policy
from app.models import Episode, HumanTask, OutboxMessage, User

LATEST = 50


@dataclass
class Overview:
    by_stage: dict = field(default_factory=dict)
    by_status: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    pending: int = 0


def overview(session: Session, user: User) -> Overview:
    mine = policy.episode_filter(user)
    by_stage = dict(session.execute(select(Episode.stage, func.count())
                                    .where(mine, Episode.status.in_(("open", "error"))).group_by(Episode.stage)).all())
    by_status = dict(session.execute(select(Episode.status, func.count()).where(mine).group_by(Episode.status)).all())
    episodes = session.scalars(select(Episode).where(mine).order_by(Episode.updated_at.desc()).limit(LATEST)).all()
    ready = dict(session.execute(select(HumanTask.episode_id, func.count())
                                 .where(HumanTask.status == "ready", HumanTask.episode_id.in_([e.id for e in episodes]))
                                 .group_by(HumanTask.episode_id)).all()) if episodes else {}
    # Messages of no episode (account emails) belong to no authority's figures.
    pending = session.scalar(select(func.count()).select_from(OutboxMessage)
                             .join(Episode, Episode.id == OutboxMessage.episode_id)
                             .where(OutboxMessage.status.in_(("pending", "sending")), mine))
    rows = [{"reference": e.reference, "stage": e.stage, "status": e.status, "ready": ready.get(e.id, 0),
             "next_timer_at": e.next_timer_at, "outcome": e.outcome} for e in episodes]
    return Overview(by_stage, by_status, rows, pending or 0)
