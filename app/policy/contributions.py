"""Contributions to the assessment: who may invite whom, and who may go on writing one."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app import membership
from app.models import Contribution, Episode, User

from app import policy as _policy  # the package, read at call time: its account rules live elsewhere

from .episodes import may, visible_episode

INVITING_STAGES = ("assessment", "delivery")
OPEN_CONTRIBUTION_STATUSES = ("invited", "submitted", "returned")


def may_invite(session: Session, user: User | None, episode: Episode) -> bool:
    """The lead professional (the originator until one is appointed), as a practitioner."""
    return _policy.is_usable(user) and user.role == "practitioner" and may(session, user, "manage_members", episode)


def why_not_invitable(episode: Episode) -> str | None:
    """None when contributions may be invited on the episode now, else why not."""
    if not episode.authority.contributors_enabled:
        return (f"Contributions are switched off in {episode.authority.name}. "
                "An administrator can switch them on.")
    if not episode.is_open or episode.stage not in INVITING_STAGES:
        return "Contributions can be invited while the assessment is written and during delivery."
    return None


def invitable_members(session: Session, episode: Episode, inviter: User) -> list[User]:
    """Current members, other than the inviter, who may write in the assessment. A member the
    family's consent shuts out (an excluded service) cannot open the episode, so is not offered."""
    return [m.user for m in membership.current(session, episode)
            if m.user_id != inviter.id and m.role in ("tac_member", "contributor", "originator")
            and m.user.role == "practitioner" and visible_episode(session, m.user, episode.id) is not None]


def contribution_refusal(session: Session, episode: Episode, contribution: Contribution) -> str | None:
    """Why an open contribution may not go on (None: it may): its writer can no longer open the
    episode, because the consent now excludes them or was withdrawn."""
    if visible_episode(session, contribution.contributor, episode.id) is None:
        return "The family's consent no longer allows this contributor to see the episode."
    return None


def may_contribute_to(part, sections) -> bool:
    """A member invited as a contributor is limited to the sections they already write (`part`: their
    current membership); any other member may be invited to any section."""
    return not (part.role == "contributor" and part.sections and not set(sections) <= set(part.sections))
