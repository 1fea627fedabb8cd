"""Who answers the six-month outcome check of a closed CAF."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Episode, EpisodeMember

from .accounts import is_usable
from .episodes import authority_id_of


def lead_can_follow_up(session: Session, episode: Episode) -> bool:
    """The lead professional answers while still an active, usable account and a current member of the
    episode; otherwise (they have left) an administrator of the episode's authority answers."""
    lead = episode.lead_professional
    if lead is None or not is_usable(lead) or authority_id_of(lead) != episode.authority_id:
        return False
    return session.scalar(select(EpisodeMember.id).where(
        EpisodeMember.episode_id == episode.id, EpisodeMember.user_id == lead.id,
        EpisodeMember.removed_at.is_(None)).limit(1)) is not None
