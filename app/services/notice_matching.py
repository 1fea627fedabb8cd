"""Notices received from other systems, found by the national index search beside eCAF's own CAFs.

A notice is matched by the same rule as an index entry (index_matching): the search reads the
notices' keys with the entries', ranks them together and then reads the few it shows. A withdrawn
notice, or one sent by a client since revoked (its word is no longer taken), is never found.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiClient, Authority, ReceivedNotice
from app.services.index_matching import Keys, candidates

ECAF_KIND, NOTICE_KIND = "ecaf", "received_notice"


@dataclass(frozen=True)
class Source:
    """Where a result comes from: a CAF in eCAF, or an assessment another system reported."""
    kind: str  # ECAF_KIND or NOTICE_KIND
    assessment: str = "CAF"
    system: str | None = None  # the client system's name
    authority: str | None = None  # the client's authority

    @property
    def description(self) -> str:
        if self.kind == ECAF_KIND:
            return "An eCAF CAF"
        return f"{self.assessment} reported by {self.system} ({self.authority})"


ECAF = Source(ECAF_KIND)


def query(keys: Keys):
    """The live notices' keys worth scoring, as the index's candidate query reads entries'. Each row's
    `notice_id` tells it from an entry's."""
    return (
        select(ReceivedNotice.id.label("notice_id"), ReceivedNotice.family_name, ReceivedNotice.date_of_birth,
               ReceivedNotice.postcode, ReceivedNotice.nhs_number, ReceivedNotice.updated_at)
        .join(ApiClient, ApiClient.id == ReceivedNotice.client_id)
        .where(candidates(keys, ReceivedNotice), ReceivedNotice.withdrawn_at.is_(None), ApiClient.revoked_at.is_(None))
    )


def shown(session: Session, notice_ids: list[int]) -> dict[int, tuple[ReceivedNotice, str, Source]]:
    """The notices to show, each with its authority's name and its source."""
    if not notice_ids:
        return {}
    rows = session.execute(
        select(ReceivedNotice, Authority.name, ApiClient.name)
        .join(Authority, Authority.id == ReceivedNotice.authority_id)
        .join(ApiClient, ApiClient.id == ReceivedNotice.client_id)
        .where(ReceivedNotice.id.in_(notice_ids)))
    return {notice.id: (notice, authority, Source(NOTICE_KIND, notice.assessment, system, authority))
            for notice, authority, system in rows}
