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


@dataclass
class Invitation:
    typed: dict
    errors: dict = field(default_factory=dict)


def invite(runtime, episode_id: int, inviter: User, form: dict) -> Invitation:
    typed = {"member": (form.get("member") or "").strip(), "sections": [s for s in form.get("sections", []) if s],
             "note": (form.get("note") or "").strip()[:2000]}
    invitation = Invitation(typed)
    with runtime.db.session() as session:
        if runtime.db.is_postgresql:
            # A consent change holds this lock too: the member is checked against the consent as it is.
            session.execute(select(Episode.id).where(Episode.id == episode_id).with_for_update())
        episode = policy.visible_episode(session, inviter, episode_id)
        if episode is None or not policy.may_invite(session, inviter, episode):
            raise LookupError(episode_id)
        if (reason := policy.why_not_invitable(episode)) is not None:
            invitation.errors["member"] = reason
            return invitation
        people = {str(u.id): u for u in policy.invitable_members(session, episode, inviter)}
        member = people.get(typed["member"])
        if member is None:
            invitation.errors["member"] = "Select a member of the episode to invite"
        known = sections_of(episode)
        if not typed["sections"] or not set(typed["sections"]) <= set(known):
            invitation.errors["sections"] = "Select the sections of the assessment to contribute to"
        elif member is not None:
            part = membership.membership_of(session, episode, member.id)
            if not policy.may_contribute_to(part, typed["sections"]):
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
