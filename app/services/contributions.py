"""Inviting a member to contribute to named sections of the assessment."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, membership, policy
from app.clock import now
from app.contributions import sections_of
from app.models import Contribution, Episode, User
from app.services import called_processes

INVITING_STAGES = ("assessment", "delivery")


@dataclass
class Invitation:
    typed: dict
    errors: dict = field(default_factory=dict)


def may_invite(session: Session, user: User, episode: Episode) -> bool:
    """The lead professional (the originator until one is appointed), on an open episode."""
    return user.role == "practitioner" and policy.may(session, user, "manage_members", episode)


def why_not(episode: Episode) -> str | None:
    if not episode.authority.contributors_enabled:
        return (f"Contributions are switched off in {episode.authority.name}. "
                "An administrator can switch them on.")
    if not episode.is_open or episode.stage not in INVITING_STAGES:
        return "Contributions can be invited while the assessment is written and during delivery."
    return None


def candidates(session: Session, episode: Episode, inviter: User) -> list[User]:
    """Current members, other than the inviter, who may write in the assessment. A member the
    family's consent shuts out (an excluded service) cannot open the episode, so is not offered."""
    return [m.user for m in membership.current(session, episode)
            if m.user_id != inviter.id and m.role in ("tac_member", "contributor", "originator")
            and m.user.role == "practitioner" and policy.visible_episode(session, m.user, episode.id) is not None]


def invite(runtime, episode_id: int, inviter: User, form: dict) -> Invitation:
    typed = {"member": (form.get("member") or "").strip(), "sections": [s for s in form.get("sections", []) if s],
             "note": (form.get("note") or "").strip()[:2000]}
    invitation = Invitation(typed)
    with runtime.db.session() as session:
        episode = policy.visible_episode(session, inviter, episode_id)
        if episode is None or not may_invite(session, inviter, episode):
            raise LookupError(episode_id)
        if (reason := why_not(episode)) is not None:
            invitation.errors["member"] = reason
            return invitation
        people = {str(u.id): u for u in candidates(session, episode, inviter)}
        member = people.get(typed["member"])
        if member is None:
            invitation.errors["member"] = "Select a member of the episode to invite"
        known = sections_of(episode)
        if not typed["sections"] or not set(typed["sections"]) <= set(known):
            invitation.errors["sections"] = "Select the sections of the assessment to contribute to"
        elif member is not None:
            part = membership.membership_of(session, episode, member.id)
            if part.role == "contributor" and part.sections and not set(typed["sections"]) <= set(part.sections):
                invitation.errors["sections"] = (f"{member.full_name} may contribute only to: "
                                                 + ", ".join(known.get(s, s) for s in part.sections))
        if invitation.errors:
            return invitation
        row = Contribution(episode_id=episode.id, contributor_id=member.id, invited_by_id=inviter.id,
                           sections=typed["sections"], note=typed["note"] or None, status="invited",
                           created_at=now())
        session.add(row)
        session.flush()
        audit.record(session, "contribution_invited", actor_id=inviter.id, episode_id=episode.id,
                     contribution=row.id, contributor=member.id, sections=row.sections)
        contribution_id = row.id
    try:
        called_processes.start(runtime, Contribution, contribution_id, episode_id, "contribution_requested",
                               inviter.id)
    except called_processes.REFUSALS as exc:
        invitation.errors["member"] = f"The invitation could not be sent: {exc}"
    return invitation


def for_episode(session: Session, episode: Episode) -> list[Contribution]:
    return session.scalars(select(Contribution).where(Contribution.episode_id == episode.id)
                           .order_by(Contribution.created_at.desc(), Contribution.id.desc())).all()
