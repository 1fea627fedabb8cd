"""The service status page: open episodes by stage and what the engine is waiting for.

It shows references and counts only, never a child's details, and only of the administrator's own
authority."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from app import policy
from app.clock import now
from app.models import Episode, HumanTask, OutboxMessage
from app.web import runtime
from app.web.access import current_user, public, roles

bp = Blueprint("status", __name__)


@bp.get("/status")
@roles("administrator")
def index():
    # Everything here is of the administrator's own authority: the policy's episode filter scopes
    # every figure, and nothing is counted across authorities (there is no national role).
    mine = policy.episode_filter(current_user())
    with runtime().db.session() as session:
        by_stage = dict(session.execute(
            select(Episode.stage, func.count()).where(mine, Episode.status.in_(("open", "error")))
            .group_by(Episode.stage)).all())
        by_status = dict(session.execute(select(Episode.status, func.count()).where(mine)
                                         .group_by(Episode.status)).all())
        episodes = session.scalars(select(Episode).where(mine)
                                   .order_by(Episode.updated_at.desc()).limit(50)).all()
        ready = dict(session.execute(select(HumanTask.episode_id, func.count())
                                     .where(HumanTask.status == "ready",
                                            HumanTask.episode_id.in_([e.id for e in episodes]))
                                     .group_by(HumanTask.episode_id)).all()) if episodes else {}
        pending = session.scalar(select(func.count()).select_from(OutboxMessage)
                                 .join(Episode, Episode.id == OutboxMessage.episode_id)
                                 .where(OutboxMessage.status == "pending", mine))
        rows = [{"reference": e.reference, "stage": e.stage, "status": e.status, "ready": ready.get(e.id, 0),
                 "next_timer_at": e.next_timer_at, "outcome": e.outcome} for e in episodes]
    return render_template("status/index.html", by_stage=by_stage, by_status=by_status, rows=rows,
                           pending=pending, now=now())


@bp.get("/healthz")
@public
def health():
    with runtime().db.session() as session:
        session.execute(select(1))
    return {"status": "ok"}
