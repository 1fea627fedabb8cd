"""Lanes name the role that performs a task; this is who gets a task in each lane."""
from __future__ import annotations

from app.models import Episode

PRACTITIONER = "Practitioner"
LEAD_PROFESSIONAL = "Lead professional"
SYSTEM = "eCAF system"
ADMINISTRATOR = "Administrator"
# The called processes' lanes: the practitioner who asked a service for help, the team of the
# service it is with now, and the member invited to contribute to the assessment.
REQUESTER = "Requester"
SERVICE_TEAM = "Service team"
CONTRIBUTOR = "Contributor"
KNOWN_LANES = {PRACTITIONER, LEAD_PROFESSIONAL, SYSTEM, ADMINISTRATOR, REQUESTER, SERVICE_TEAM, CONTRIBUTOR}
# Lanes whose tasks go to one person of the episode; the others are claimed by anyone with the role
# (the service team's by any member of the service the request is with).
PERSON_LANES = {PRACTITIONER, LEAD_PROFESSIONAL, REQUESTER, CONTRIBUTOR}
ROLE_OF_LANE = {ADMINISTRATOR: "administrator"}


def assignee_for(lane: str | None, episode: Episode, owner_id: int | None = None) -> int | None:
    """The user a task in this lane is assigned to; None leaves it to the role to claim.
    `owner_id` is the requester or contributor of a called process's task."""
    if lane in (REQUESTER, CONTRIBUTOR):
        return owner_id
    if lane == PRACTITIONER:
        # A moved episode's originator works in another authority now: the new lead carries it on.
        if episode.transferred_from and episode.lead_professional_id:
            return episode.lead_professional_id
        return episode.originator_id
    if lane == LEAD_PROFESSIONAL:
        # The author "holds the baton" until the team appoints a lead professional.
        return episode.lead_professional_id or episode.originator_id
    return None
