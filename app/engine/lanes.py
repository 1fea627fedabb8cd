"""Lanes name the role that performs a task; this is who gets a task in each lane."""
from __future__ import annotations

from app.models import Episode

PRACTITIONER = "Practitioner"
LEAD_PROFESSIONAL = "Lead professional"
SYSTEM = "eCAF system"
ADMINISTRATOR = "Administrator"
KNOWN_LANES = {PRACTITIONER, LEAD_PROFESSIONAL, SYSTEM, ADMINISTRATOR}
# Lanes whose tasks go to one person of the episode; the others are claimed by anyone with the role.
PERSON_LANES = {PRACTITIONER, LEAD_PROFESSIONAL}
ROLE_OF_LANE = {ADMINISTRATOR: "administrator"}


def assignee_for(lane: str | None, episode: Episode) -> int | None:
    """The user a task in this lane is assigned to; None leaves it to the role to claim."""
    if lane == PRACTITIONER:
        # A moved episode's originator works in another authority now: the new lead carries it on.
        if episode.transferred_from and episode.lead_professional_id:
            return episode.lead_professional_id
        return episode.originator_id
    if lane == LEAD_PROFESSIONAL:
        # The author "holds the baton" until the team appoints a lead professional.
        return episode.lead_professional_id or episode.originator_id
    return None
