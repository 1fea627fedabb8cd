"""Episode membership: who works on an episode, in which part. Every change is audited.

The originator joins when the episode starts and the lead professional when appointed; the lead
professional or an administrator adds and removes Team Around the Child members and, where the
authority allows them, contributors. Removal keeps the row as history.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.clock import now
from app.models import Episode, EpisodeMember, User


class MembershipRefused(ValueError):
    """A membership change that the rules do not allow; the message says why."""


def current(session: Session, episode: Episode) -> list[EpisodeMember]:
    return session.scalars(select(EpisodeMember).where(
        EpisodeMember.episode_id == episode.id, EpisodeMember.removed_at.is_(None))
        .order_by(EpisodeMember.added_at, EpisodeMember.id)).all()


def history(session: Session, episode: Episode) -> list[EpisodeMember]:
    return session.scalars(select(EpisodeMember).where(EpisodeMember.removed_at.is_not(None),
                                                       EpisodeMember.episode_id == episode.id)
                           .order_by(EpisodeMember.removed_at.desc())).all()


def membership_of(session: Session, episode: Episode, user_id: int) -> EpisodeMember | None:
    return session.scalar(select(EpisodeMember).where(
        EpisodeMember.episode_id == episode.id, EpisodeMember.user_id == user_id,
        EpisodeMember.removed_at.is_(None)).order_by(EpisodeMember.id.desc()).limit(1))


def add(session: Session, episode: Episode, user: User, role: str, *, by_id: int | None,
        reason: str | None = None, sections: list[str] | None = None) -> EpisodeMember:
    """Make `user` a current member in `role`, replacing any other current part they had."""
    existing = membership_of(session, episode, user.id)
    if existing is not None and existing.role == role and existing.sections == sections:
        return existing
    if existing is not None:
        existing.removed_at, existing.removed_by_id = now(), by_id
        existing.removal_reason = f"now {role.replace('_', ' ')}"
    member = EpisodeMember(episode_id=episode.id, user_id=user.id, role=role, sections=sections,
                           added_at=now(), added_by_id=by_id)
    session.add(member)
    session.flush()
    audit.record(session, "member_added", actor_id=by_id, episode_id=episode.id, user_id=user.id,
                 role=role, reason=reason, sections=sections)
    return member


def remove(session: Session, member: EpisodeMember, *, by_id: int | None, reason: str) -> None:
    if not (reason or "").strip():
        raise MembershipRefused("Enter the reason for removing this person from the episode")
    if member.removed_at is not None:
        raise MembershipRefused("This person is no longer a member of the episode")
    episode = session.get(Episode, member.episode_id)
    if member.user_id == episode.lead_professional_id:
        raise MembershipRefused("The lead professional cannot be removed; appoint a new lead professional first")
    member.removed_at, member.removed_by_id, member.removal_reason = now(), by_id, reason.strip()
    audit.record(session, "member_removed", actor_id=by_id, episode_id=episode.id, user_id=member.user_id,
                 role=member.role, reason=reason.strip())


def appoint_lead(session: Session, episode: Episode, user: User, *, by_id: int | None) -> None:
    """The lead professional is a member; a previous lead stays on as a Team Around the Child member."""
    previous = episode.lead_professional_id
    episode.lead_professional_id = user.id
    add(session, episode, user, "lead_professional", by_id=by_id, reason="appointed lead professional")
    if previous and previous != user.id:
        former = session.get(User, previous)
        add(session, episode, former, "tac_member", by_id=by_id, reason="no longer lead professional")
