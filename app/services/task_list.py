"""The task list: ready user tasks from the human_task projection (no workflow is loaded)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, select
from sqlalchemy.orm import Session, defer

from app import policy
from app.clock import as_utc, now
from app.models import Child, Episode, HumanTask, User

FILTERS = ("mine", "role", "overdue", "soon")
SOON = timedelta(days=7)


@dataclass
class TaskRow:
    task_id: int
    episode_id: int
    reference: str
    child_name: str
    stage: str
    title: str
    due_at: datetime | None
    overdue: bool
    child_protection: bool
    assigned_to_me: bool
    claimable: bool
    has_draft: bool
    status: str


def ready_tasks(session: Session, user: User, filters: set[str]) -> list[TaskRow]:
    moment = now()
    query = (select(HumanTask, Episode, Child)
             .join(Episode, Episode.id == HumanTask.episode_id)
             .outerjoin(Child, Child.id == Episode.child_id)
             .where(HumanTask.status == "ready", Episode.status.in_(("open", "error", "suspended")),
                    policy.task_filter(user))
             # A list never needs the episodes' workflow state (tens of KB each).
             .options(defer(Episode.state)))
    if "mine" in filters and "role" not in filters:
        query = query.where(HumanTask.assigned_user_id == user.id)
    if "role" in filters and "mine" not in filters:
        query = query.where(HumanTask.assigned_user_id.is_(None))
    if "overdue" in filters:
        query = query.where(HumanTask.due_at < moment)
    if "soon" in filters:
        query = query.where(HumanTask.due_at >= moment, HumanTask.due_at < moment + SOON)
    overdue_first = case((HumanTask.due_at < moment, 0), else_=1)
    protection_first = case((Episode.child_protection.is_(True), 0), else_=1)
    no_date_last = case((HumanTask.due_at.is_(None), 1), else_=0)
    query = query.order_by(overdue_first, protection_first, no_date_last, HumanTask.due_at, HumanTask.id)
    rows = []
    for task, episode, child in session.execute(query.limit(500)).all():
        rows.append(TaskRow(
            task_id=task.id, episode_id=episode.id, reference=episode.reference,
            child_name=child.display_name if child else "(record removed)", stage=task.stage or episode.stage,
            title=task.title, due_at=task.due_at,
            overdue=task.due_at is not None and as_utc(task.due_at) < moment,
            child_protection=episode.child_protection, assigned_to_me=task.assigned_user_id == user.id,
            claimable=task.assigned_user_id is None, has_draft=bool(task.draft), status=episode.status))
    return rows
