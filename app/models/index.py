"""eCAF's own national index: that a CAF exists for a child, and whom to contact."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime


class IndexEntry(Base):
    __tablename__ = "index_entry"
    # Pattern ops on PostgreSQL let the search's postcode-district prefix use the index.
    __table_args__ = (Index("ix_index_entry_postcode", "postcode", postgresql_ops={"postcode": "varchar_pattern_ops"}),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), unique=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    # Search keys, copied so the index answers without reading the child's record.
    family_name: Mapped[str] = mapped_column(String(200), index=True)
    date_of_birth: Mapped[date | None] = mapped_column(Date, index=True)
    postcode: Mapped[str | None] = mapped_column(String(10))
    # Searched for exactly, never shown in a result.
    nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    contact: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="open")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
