"""Who may do what to which episode, task and child: the one place that decides.

The default is deny. A practitioner sees an episode they started, lead, or hold a task in; an
administrator sees the episodes of their own authority. Lists are filtered with the same rules as
single records, so a record one may not see is indistinguishable from one that does not exist.
"""
from __future__ import annotations

from sqlalchemy import exists, false, or_, select
from sqlalchemy.orm import Session, aliased

from app.engine.lanes import ROLE_OF_LANE
from app.models import Child, Episode, HumanTask, User


# Aliases keep the subqueries independent of whatever the outer query already joins.
_HeldTask = aliased(HumanTask)
_TaskEpisode = aliased(Episode)


def _authority_id(user: User) -> int | None:
    return user.organisation.authority_id if user.organisation else None


def episode_filter(user: User | None):
    """A WHERE clause for the episodes `user` may open."""
    if user is None or not user.active:
        return false()
    if user.role == "administrator":
        return Episode.authority_id == _authority_id(user)
    if user.role != "practitioner":
        return false()
    return or_(
        Episode.originator_id == user.id,
        Episode.lead_professional_id == user.id,
        exists().where(_HeldTask.episode_id == Episode.id, _HeldTask.assigned_user_id == user.id),
    )


def visible_episode(session: Session, user: User | None, episode_id: int) -> Episode | None:
    """The episode if `user` may open it, else None (the caller answers 404 either way)."""
    return session.scalar(select(Episode).where(Episode.id == episode_id, Episode.status != "deleted",
                                                episode_filter(user)))


def child_filter(user: User | None):
    """Children `user` may find: those with an episode the user may open."""
    return exists().where(Episode.child_id == Child.id, Episode.status != "deleted", episode_filter(user))


def claimable_roles(user: User) -> set[str]:
    return {lane for lane, role in ROLE_OF_LANE.items() if role == user.role}


def task_filter(user: User | None):
    """Ready tasks `user` may see in their task list: assigned to them, or open to their role."""
    if user is None:
        return false()
    return or_(HumanTask.assigned_user_id == user.id,
               HumanTask.assigned_user_id.is_(None) & HumanTask.lane.in_(claimable_roles(user))
               & _in_users_authority(user))


def _in_users_authority(user: User):
    return exists().where(_TaskEpisode.id == HumanTask.episode_id, _TaskEpisode.authority_id == _authority_id(user))


def may_complete(user: User, task: HumanTask) -> bool:
    return task.status == "ready" and task.assigned_user_id == user.id


def may_claim(user: User, task: HumanTask, episode: Episode) -> bool:
    return (task.status == "ready" and task.assigned_user_id is None and task.lane in claimable_roles(user)
            and episode.authority_id == _authority_id(user))


def may_release(user: User, task: HumanTask) -> bool:
    return task.status == "ready" and task.assigned_user_id == user.id and task.lane in ROLE_OF_LANE
