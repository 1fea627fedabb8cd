"""Notices received from other systems: a CAF-like assessment of a child is held elsewhere (issue 21).

A council's case system or a health system tells the national index that it holds an assessment (an
Early Help Assessment in Mosaic, say), so that *Is there a CAF?* names it and whom to contact. One
row per (sending client, the client's own reference); withdrawing keeps the row for the audit trail.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .api_client import ApiClient
from .base import Base, JSONType, UTCDateTime

NOTICE_STATUSES = ("open", "closed")


class ReceivedNotice(Base):
    __tablename__ = "received_notice"
    # The index search's candidate query (date of birth, postcode prefix, NHS number) finds notices as it
    # finds entries: by B-tree, the postcode with pattern ops on PostgreSQL so its district prefix is indexed.
    __table_args__ = (
        UniqueConstraint("client_id", "reference", name="uq_received_notice_client_id"),
        Index("ix_received_notice_postcode", "postcode", postgresql_ops={"postcode": "varchar_pattern_ops"}),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id"))
    client: Mapped[ApiClient] = relationship()
    # The sending system's own id for its assessment: how it replaces or withdraws this notice.
    reference: Mapped[str] = mapped_column(String(64))
    # The client's authority when the notice was sent (results name it).
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    assessment: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")
    # Search keys, normalised as the index's are; given names are kept but, as for entries, not matched.
    nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_names: Mapped[str | None] = mapped_column(String(200))
    date_of_birth: Mapped[date] = mapped_column(Date, index=True)
    postcode: Mapped[str | None] = mapped_column(String(10))
    contact: Mapped[dict] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
