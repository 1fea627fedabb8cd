"""Notices received from other systems, found by the national index search beside eCAF's own CAFs.

A notice is matched by the same rule as an index entry (index_matching): the search reads the
notices' keys with the entries', ranks them together and then reads the few it shows. A withdrawn
notice, or one sent by a client since revoked or expired (its word is no longer taken, and it can no
longer withdraw it), is never found. A notice naming a child shielded in eCAF (by NHS number, or by
family name and date of birth) is shielded with the child: practitioners never see it, administrators
see it marked (it would tell where the child is as surely as the CAF would).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, literal_column, or_, select, true
from sqlalchemy.orm import Session

from app import policy
from app.models import ApiClient, Authority, Child, ReceivedNotice, User
from app.services.api_clients import today
from app.services.shielding import sees_shielded
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
        return f"{self.assessment} reported by {self.system} for {self.authority}"


ECAF = Source(ECAF_KIND)
# The candidate queries' last column: whether the row is a notice's (the search reads both in one statement).
IS_ENTRY, IS_NOTICE = literal_column("0").label("notice"), literal_column("1").label("notice")


def _shielded_child():
    """A shielded child the notice names: by NHS number, or by family name and date of birth (a notice
    need not carry the number, and would tell where the child is as surely)."""
    return exists().where(Child.shielded == true(), or_(
        Child.nhs_number == ReceivedNotice.nhs_number,
        and_(Child.date_of_birth == ReceivedNotice.date_of_birth,
             func.lower(Child.family_name) == func.lower(ReceivedNotice.family_name))))


def query(keys: Keys, viewer: User | None):
    """The live notices' keys worth scoring, as the index's candidate query reads entries' (the same
    columns, ending with IS_NOTICE), as `viewer` may see them."""
    return (
        select(ReceivedNotice.id, ReceivedNotice.family_name, ReceivedNotice.date_of_birth,
               ReceivedNotice.postcode, ReceivedNotice.nhs_number, ReceivedNotice.updated_at, IS_NOTICE)
        .join(ApiClient, ApiClient.id == ReceivedNotice.client_id)
        .where(candidates(keys, ReceivedNotice), ReceivedNotice.withdrawn_at.is_(None),
               policy.live_client_clause(today()), true() if sees_shielded(viewer) else ~_shielded_child())
    )


def shown(session: Session, notice_ids: list[int]) -> dict[int, tuple[ReceivedNotice, str, bool, Source]]:
    """The notices to show, each with its authority's name, whether its child is shielded, and its source."""
    if not notice_ids:
        return {}
    rows = session.execute(
        select(ReceivedNotice, Authority.name, ApiClient.name, _shielded_child())
        .join(Authority, Authority.id == ReceivedNotice.authority_id)
        .join(ApiClient, ApiClient.id == ReceivedNotice.client_id)
        .where(ReceivedNotice.id.in_(notice_ids)))
    return {notice.id: (notice, authority, bool(shielded), Source(NOTICE_KIND, notice.assessment, system, authority))
            for notice, authority, system, shielded in rows}
