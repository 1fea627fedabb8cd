"""Repairs an administrator makes to an episode: each one step, each with a reason, each audited.

Retry a failed step (optionally with corrected task data), reassign a task, move a waiting deadline,
suspend and resume, place and lift a legal hold, delete now, terminate with a closure reason, and
look inside an episode (task data, waiting timers) without changing it. Every SpiffWorkflow detail
stays in this package; a refused repair raises RepairRefused and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from app import audit, membership, policy
from app.clock import as_utc, now
from app.models import Episode, EpisodeMember, HumanTask, User
from app.uk_time import LONDON  # administrators read and type times in UK time

from .errors import EngineError
from .runner import Engine




class RepairRefused(EngineError):
    """The repair does not apply or is not allowed; the message says why and nothing changed."""


@dataclass
class WaitingTimer:
    task_id: str
    name: str
    due: datetime | None
    kind: str  # deadline (boundary timer) or wait (intermediate timer)


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RepairRefused("Enter the reason for this repair: it is kept in the audit trail")
    return reason[:2000]


# ---------------------------------------------------------------- looking inside

def waiting_timers(engine: Engine, episode: Episode) -> list[WaitingTimer]:
    if not episode.state:
        return []
    workflow = engine._load(episode)
    found = []
    for task in workflow.get_tasks(state=TaskState.WAITING):
        event = getattr(task.task_spec, "event_definition", None)
        value = task.internal_data.get("event_value")
        if not isinstance(event, TimerEventDefinition) or not isinstance(value, str):
            continue
        kind = "deadline" if getattr(task.task_spec, "cancel_activity", None) is not None else "wait"
        found.append(WaitingTimer(str(task.id), task.task_spec.bpmn_name or task.task_spec.bpmn_id or "Timer",
                                  as_utc(TimerEventDefinition.get_datetime(value)), kind))
    return sorted(found, key=lambda t: t.due or datetime.max)


def task_data(engine: Engine, episode: Episode) -> list[dict]:
    """The data of each failed and ready task: what a retry would run with, and what can be corrected."""
    if not episode.state:
        return []
    workflow = engine._load(episode)
    shown = []
    for state in (TaskState.ERROR, TaskState.READY):
        for task in workflow.get_tasks(state=state):
            if task.task_spec.bpmn_id is None:
                continue
            shown.append({"task_id": str(task.id), "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                          "state": "failed" if state == TaskState.ERROR else "ready",
                          "data": {k: v for k, v in task.data.items() if not k.startswith("_")}})
    return shown


# ---------------------------------------------------------------- repairs

def retry(engine: Engine, episode_id: int, actor_id: int, reason: str, data: dict | None = None):
    reason = _reason(reason)
    with engine.db.session() as session:
        episode = session.get(Episode, episode_id)
        if episode is None or not episode.step_failed:
            raise RepairRefused("Only an episode whose automatic step failed can be retried")
    return engine.retry(episode_id, actor_id, data, reason=reason)


def reassign(engine: Engine, episode_id: int, human_task_id: int, user_id: int, actor_id: int, reason: str) -> None:
    reason = _reason(reason)
    with engine.db.session() as session:
        episode = engine._open_episode(session, episode_id, ("open", "error", "suspended"))
        task = session.get(HumanTask, human_task_id)
        if task is None or task.episode_id != episode.id or task.status != "ready":
            raise RepairRefused("That task is not waiting to be done on this episode")
        member = session.scalar(select(EpisodeMember).where(
            EpisodeMember.episode_id == episode.id, EpisodeMember.user_id == user_id,
            EpisodeMember.removed_at.is_(None), policy.task_holder_clause(EpisodeMember)))
        if member is None:
            raise RepairRefused("A task can only go to a member of the episode (add them on its People page first)")
        if task.assigned_user_id == user_id:
            raise RepairRefused("The task is already with that person")
        previous = task.assigned_user_id
        task.assigned_user_id, task.reassigned_by_id = user_id, actor_id
        audit.record(session, "repair_reassign", actor_id=actor_id, episode_id=episode.id, reason=reason,
                     task=task.name, from_user=previous, to_user=user_id)


def extend_deadline(engine: Engine, episode_id: int, timer_task_id: str, new_due: datetime, actor_id: int,
                    reason: str):
    """Move a waiting timer to a later time; its user tasks' due dates follow."""
    reason = _reason(reason)
    new_due = as_utc(new_due)
    if new_due <= now():
        raise RepairRefused("The new time must be in the future")

    def move(session, episode, workflow, ctx):
        timers = {t.task_id: t for t in waiting_timers(engine, episode)}
        if timer_task_id not in timers:
            raise RepairRefused("That timer is not waiting on this episode any more")
        old = timers[timer_task_id].due
        if old is not None and new_due <= old:
            raise RepairRefused("An extension must be later than the current time limit "
                                f"({old.astimezone(LONDON):%d %B %Y at %H:%M} UK time)")
        # Timers that share the chosen one's time limit (e.g. the 35-day and 48-hour limits of an
        # assessment without a concern) are one deadline to the administrator: they move together.
        moved = [t for t in timers.values() if t.task_id == timer_task_id or (old is not None and t.due == old)]
        for timer in moved:
            workflow.get_task_from_id(UUID(timer.task_id)).internal_data["event_value"] = new_due.isoformat()
        for row in session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id,
                                                           HumanTask.status == "ready")):
            if row.due_at is not None and old is not None and as_utc(row.due_at) == old:
                row.due_at = new_due
        audit.record(session, "repair_extend_deadline", actor_id=actor_id, episode_id=episode.id, reason=reason,
                     timers=[t.name for t in moved], old_due=old.isoformat() if old else None,
                     new_due=new_due.isoformat())

    return engine._step(episode_id, actor_id, move, allow_statuses=("open", "error", "suspended"))


def suspend(engine: Engine, episode_id: int, actor_id: int, reason: str) -> None:
    """Nothing moves while suspended: no timers fire and no task can be completed."""
    reason = _reason(reason)
    with engine.db.session() as session:
        episode = engine._lock(session, episode_id)
        if episode is None or episode.status not in ("open", "error"):
            raise RepairRefused("Only an open episode can be suspended")
        episode.status, episode.updated_at = "suspended", now()
        audit.record(session, "repair_suspend", actor_id=actor_id, episode_id=episode_id, reason=reason)


def resume(engine: Engine, episode_id: int, actor_id: int, reason: str):
    reason = _reason(reason)
    with engine.db.session() as session:
        episode = engine._lock(session, episode_id)
        if episode is None or episode.status != "suspended":
            raise RepairRefused("Only a suspended episode can be resumed")
        episode.status = "error" if episode.last_error else "open"
        audit.record(session, "repair_resume", actor_id=actor_id, episode_id=episode_id, reason=reason)
    # Deadlines that passed while suspended fire now.
    return engine.wake(episode_id)


def set_legal_hold(engine: Engine, episode_id: int, hold: bool, actor_id: int, reason: str) -> None:
    reason = _reason(reason)
    with engine.db.session() as session:
        episode = engine._lock(session, episode_id)
        if episode is None or episode.status == "deleted":
            raise RepairRefused("This episode no longer exists")
        if episode.legal_hold == hold:
            raise RepairRefused("The episode is already under a legal hold" if hold
                                else "The episode is not under a legal hold")
        episode.legal_hold = hold
        audit.record(session, "legal_hold_placed" if hold else "legal_hold_lifted", actor_id=actor_id,
                     episode_id=episode_id, reason=reason)


def delete_now(engine: Engine, episode_id: int, actor_id: int, reason: str):
    """The FAQ's case of a CAF created without consent: remove its content and the child's data now."""
    from handlers.episodes import purge_episode

    reason = _reason(reason)

    def purge(session, episode, workflow, ctx):
        if episode.legal_hold:
            raise RepairRefused("The episode is under a legal hold: lift the hold first")
        audit.record(session, "repair_delete", actor_id=actor_id, episode_id=episode.id, reason=reason)
        purge_episode(ctx, reason)

    return engine._step(episode_id, actor_id, purge, allow_statuses=("open", "error", "suspended", "closed"))


def terminate(engine: Engine, episode_id: int, outcome: str, actor_id: int, reason: str) -> None:
    """End the episode with a closure reason: its waiting tasks and timers are cancelled."""
    from handlers import index

    reason = _reason(reason)
    outcome = (outcome or "").strip()
    if outcome not in CLOSURE_OUTCOMES:
        raise RepairRefused("Choose the closure reason")

    def end(session, episode, workflow, ctx):
        workflow.cancel()
        episode.outcome, episode.closed_at = outcome, now()
        index.follow_episode(ctx, "caf_closed", closed=True)
        audit.record(session, "repair_terminate", actor_id=actor_id, episode_id=episode.id, reason=reason,
                     outcome=outcome)

    engine._step(episode_id, actor_id, end, allow_statuses=("open", "error", "suspended"))


CLOSURE_OUTCOMES = {
    "needs_met": "Needs met",
    "stepped_up": "Stepped up to children's social care",
    "moved_away": "Family moved away",
    "family_disengaged": "Family no longer taking part",
    "created_in_error": "Created in error",
    "administrative": "Closed by the administrator",
}


def member_choices(session, episode: Episode) -> list[User]:
    return [m.user for m in membership.current(session, episode) if policy.holds_tasks(m)]

