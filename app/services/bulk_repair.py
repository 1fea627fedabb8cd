"""Bulk repairs over a filtered list: a preview of exactly what will change, then one action.

Each episode is repaired in its own step, so one that fails again is reported and the others are
still done; the whole action is one audit row with its reason, plus each episode's own rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app import audit, policy
from app.engine import repair
from app.engine.errors import EngineError
from app.models import Episode, EpisodeMember, HumanTask, User
from app.services import admin_episodes as lists

MAX_ITEMS = 1000


@dataclass
class Item:
    episode_id: int
    reference: str
    child_name: str
    change: str
    task_id: int | None = None
    possible: bool = True

    @property
    def key(self) -> str:
        """What the "Are you sure?" page lists and posts back: the episode, and the task for a reassign."""
        return f"{self.episode_id}:{self.task_id or ''}"


@dataclass
class Plan:
    action: str
    items: list[Item] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    to_user: int | None = None
    from_user: int | None = None
    changed: bool = False  # something now matches that the "Are you sure?" page did not list

    @property
    def possible(self) -> list[Item]:
        return [item for item in self.items if item.possible]


@dataclass
class Outcome:
    done: int = 0
    failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _episodes(session: Session, ids: list[int]) -> list[Episode]:
    return session.scalars(select(Episode).where(Episode.id.in_(ids)).options(
        joinedload(Episode.child), joinedload(Episode.authority)).order_by(Episode.updated_at.desc())).all()


def preview(session: Session, admin: User, filters: lists.Filters, action: str, form, *,
            stuck_after_days: int) -> Plan:
    plan = Plan(action)
    if filters.errors:
        plan.problems.append("Correct the filter first")
        return plan
    if action not in ("retry", "reassign"):
        plan.problems.append("Choose retry or reassign")
        return plan
    ids = lists.matching_ids(session, admin, filters, stuck_after_days=stuck_after_days, limit=MAX_ITEMS)
    if action == "retry":
        for episode in _episodes(session, ids):
            if episode.status == "error":
                plan.items.append(Item(episode.id, episode.reference, _child(episode),
                                       f"run “{episode.error_task}” again (failed: {episode.last_error})"))
        if not plan.items:
            plan.problems.append("The filter matches no errored episode: there is nothing to retry")
        return plan
    return _preview_reassign(session, admin, plan, ids, form)


def _preview_reassign(session: Session, admin: User, plan: Plan, ids: list[int], form) -> Plan:
    from_user, to_user = form.get("from_user", ""), form.get("to_user", "")
    if not (from_user.isdigit() and to_user.isdigit()) or from_user == to_user:
        plan.problems.append("Choose whose tasks to move and who is to take them")
        return plan
    plan.from_user, plan.to_user = int(from_user), int(to_user)
    target = session.get(User, plan.to_user)
    if not policy.of_own_authority(admin, target):
        plan.problems.append("Choose someone from your authority to take the tasks")
        return plan
    tasks = session.scalars(select(HumanTask).where(
        HumanTask.episode_id.in_(ids), HumanTask.status == "ready", HumanTask.assigned_user_id == plan.from_user)
        .order_by(HumanTask.episode_id)).all()
    members = set(session.scalars(select(EpisodeMember.episode_id).where(
        EpisodeMember.user_id == plan.to_user, EpisodeMember.removed_at.is_(None),
        policy.task_holder_clause(EpisodeMember), EpisodeMember.episode_id.in_([t.episode_id for t in tasks]))))
    episodes = {e.id: e for e in _episodes(session, [t.episode_id for t in tasks])}
    for task in tasks:
        episode = episodes[task.episode_id]
        member = task.episode_id in members
        plan.items.append(Item(episode.id, episode.reference, _child(episode),
                               f"“{task.title}” to {target.full_name}" if member else
                               f"not possible: {target.full_name} is not a member of this episode",
                               task_id=task.id, possible=member))
    if not plan.possible:
        plan.problems.append("No matching task can be moved: the filter matches none, or the person taking "
                             "them is not a member of those episodes")
    return plan


def hold_to_listed(plan: Plan, listed: set[str]) -> bool:
    """Keep to what the "Are you sure?" page listed, worked out again now: what has stopped matching
    (retried by someone else meanwhile) is left out; if anything matches that it did not list, nothing
    is done and the plan is marked changed, to be shown again."""
    if any(item.key not in listed for item in plan.possible):
        plan.changed = True
        plan.problems.append("The episodes this would change are not the ones you were shown: check the list "
                             "again, then confirm")
        return False
    plan.items = [item for item in plan.items if item.key in listed]
    return True


def carry_out(runtime, plan: Plan, actor_id: int, reason: str) -> Outcome:
    outcome = Outcome()
    if not reason.strip():
        outcome.problems.append("Enter the reason for this bulk action: it is kept in the audit trail")
        return outcome
    for item in plan.possible:
        try:
            if plan.action == "retry":
                result = repair.retry(runtime.engine, item.episode_id, actor_id, reason)
                if result.status == "error":
                    outcome.failed.append(f"{item.reference}: {result.error}")
                    continue
            else:
                repair.reassign(runtime.engine, item.episode_id, item.task_id, plan.to_user, actor_id, reason)
        except EngineError as refused:
            outcome.failed.append(f"{item.reference}: {refused}")
            continue
        outcome.done += 1
    with runtime.db.session() as session:
        audit.record(session, f"bulk_{plan.action}", actor_id=actor_id, reason=reason, done=outcome.done,
                     failed=len(outcome.failed), episodes=[item.episode_id for item in plan.possible][:MAX_ITEMS])
    return outcome


def _child(episode: Episode) -> str:
    return episode.child.display_name if episode.child else "(record removed)"
