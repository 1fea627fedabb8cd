"""What a client system may read of its authority's episodes for statutory returns, and when a child's
NHS number goes with them.

A client with `reports:read` lists its own authority's episodes, never another's and never a deleted
one. Each row carries the NHS number only where sharing it is lawful:
- the episode's family gave consent (Children Act 2004 s.16LC lets the number identify the child
  across services; sharing it with another system still rests on the consent recorded for the CAF);
- the child is not shielded (a shielded child's identifiers go to administrators alone);
- a number is held: a number recorded as withheld because it would be detrimental to the child, or
  not known, is never sent, and the row says which.
Otherwise the number is left out and `NHS_WITHHELD` names why, so a return can count the gap.
"""
from __future__ import annotations

from sqlalchemy import and_

from app.models import ApiClient, Episode

# Why a row carries no NHS number: reason code -> what it means (the API documents these).
NHS_WITHHELD = {
    "consent_not_given": "The family has not yet given consent to share",
    "consent_refused": "The family refused consent to share",
    "consent_withdrawn": "The family withdrew consent to share",
    "child_shielded": "The child is shielded: identifiers go to administrators only",
    "withheld_detrimental": "Recorded as withheld: including it would be detrimental to the child",
    "not_known": "Recorded as not known",
    "not_recorded": "No NHS number was recorded for the child",
}
_CONSENT_REASONS = {"none": "consent_not_given", "refused": "consent_refused", "withdrawn": "consent_withdrawn"}


def returns_episode_filter(client: ApiClient):
    """The episodes a client lists for returns: its own authority's, deleted ones never."""
    return and_(Episode.authority_id == client.authority_id, Episode.status != "deleted",
                Episode.deleted_at.is_(None))


def nhs_number_for_returns(*, consent_state: str | None, shielded: bool | None, nhs_number: str | None,
                           missing_reason: str | None) -> tuple[str | None, str | None]:
    """(the number, None) where sending it is lawful, else (None, an NHS_WITHHELD code)."""
    if consent_state != "given":
        return None, _CONSENT_REASONS.get(consent_state or "none", "consent_not_given")
    if shielded:
        return None, "child_shielded"
    if nhs_number:
        return nhs_number, None
    if missing_reason == "detrimental":
        return None, "withheld_detrimental"
    if missing_reason == "not_known":
        return None, "not_known"
    return None, "not_recorded"
