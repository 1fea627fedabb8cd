"""Families: who may see a family and who may change it.

A family is seen only through its children's episodes. A user sees a family when they may open an
episode of one of its children, and on its page only what those episodes allow: a child whose
episodes the user may not open is not shown at all, not even by name or number (that a brother or
sister has a CAF is itself sensitive). An administrator sees their authority's episodes, so their
authority's children of the family.

Changing a family (adding a child or an adult, editing an adult) takes more than seeing it: an
administrator of the authority holding one of its children's episodes, or a practitioner who is
the originator, lead professional or a Team Around the Child member of an open episode of one of
its children (contributors and service contacts work on one section or request, not the family).
"""
from __future__ import annotations

from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import Session, aliased

from app.models import Episode, EpisodeMember, FamilyChild, OPEN_STATUSES, User

from .accounts import is_usable
from .episodes import episode_filter

# The parts in an episode that may change its child's family.
FAMILY_PARTS = ("originator", "lead_professional", "tac_member")

_Part = aliased(EpisodeMember)


def _may_change_clause(user: User | None, episode=Episode):
    """Episodes through which `user` may change their child's family."""
    if not is_usable(user):
        return false()
    if user.role == "administrator":
        return episode_filter(user, episode)
    if user.role != "practitioner":
        return false()
    part = exists().where(_Part.episode_id == episode.id, _Part.user_id == user.id, _Part.removed_at.is_(None),
                          _Part.role.in_(FAMILY_PARTS))
    return and_(episode_filter(user, episode), episode.status.in_(OPEN_STATUSES),
                or_(episode.lead_professional_id == user.id, part))


def visible_family_episodes(session: Session, user: User | None, family_id: int) -> list[Episode]:
    """The episodes of the family's children that `user` may open, newest first."""
    return list(session.scalars(
        select(Episode).join(FamilyChild, FamilyChild.child_id == Episode.child_id)
        .where(FamilyChild.family_id == family_id, episode_filter(user))
        .order_by(Episode.started_at.desc(), Episode.id.desc())))


def may_see_family(session: Session, user: User | None, family_id: int) -> bool:
    return bool(session.scalar(select(exists().where(
        FamilyChild.family_id == family_id, Episode.child_id == FamilyChild.child_id, episode_filter(user)))))


def may_change_family(session: Session, user: User | None, family_id: int) -> bool:
    return bool(session.scalar(select(exists().where(
        FamilyChild.family_id == family_id, Episode.child_id == FamilyChild.child_id, _may_change_clause(user)))))


def may_place_child(session: Session, user: User | None, child_id: int) -> bool:
    """May `user` put this child in a family (the child's own episode gives them the part to)?"""
    return bool(session.scalar(select(exists().where(Episode.child_id == child_id, _may_change_clause(user)))))


def may_change_through(session: Session, user: User | None, episode_id: int) -> bool:
    """May `user` change the family of this episode's child, through this episode?"""
    return bool(session.scalar(select(exists().where(Episode.id == episode_id, _may_change_clause(user)))))


def may_start_sibling_caf(session: Session, user: User | None, *, family_id: int | None = None,
                          episode_id: int | None = None) -> bool:
    """Whether to offer "Start a CAF for another child in this family": Start a CAF is a practitioner's
    page, and the family must be theirs to add a child to."""
    if not is_usable(user) or user.role != "practitioner":
        return False
    if episode_id is not None:
        return may_change_through(session, user, episode_id)
    return family_id is not None and may_change_family(session, user, family_id)
