"""Children: personal data kept only as long as an episode needs it."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now

from .base import Base, UTCDateTime
from .people import Authority


class Child(Base):
    __tablename__ = "child"
    __table_args__ = (
        # The search requests queue compares names as typed, birthdays and postcode districts (by prefix:
        # pattern ops on PostgreSQL let LIKE 'W9 %' use the index whatever the collation).
        Index("ix_child_family_name_folded", func.lower(func.trim(text("family_name")))),
        Index("ix_child_given_names_folded", func.lower(func.trim(text("given_names")))),
        Index("ix_child_date_of_birth", "date_of_birth"),
        Index("ix_child_postcode", "postcode", postgresql_ops={"postcode": "varchar_pattern_ops"}),
        # One record per NHS number: the database refuses a second, however close together they come.
        UniqueConstraint("nhs_number", name="uq_child_nhs_number"),
        CheckConstraint("nhs_number IS NULL OR nhs_number_missing IS NULL", name="ck_child_nhs_number_or_reason"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    given_names: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(String(500))
    postcode: Mapped[str | None] = mapped_column(String(10))
    # The consistent identifier (Children Act 2004 s.16LC): ten digits, checked; or why it is missing
    # (a key of app.nhs_number.MISSING_REASONS). Children recorded before 2026 may have neither.
    nhs_number: Mapped[str | None] = mapped_column(String(10))
    nhs_number_missing: Mapped[str | None] = mapped_column(String(20))
    home_authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    home_authority: Mapped[Authority] = relationship()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Shielded children (e.g. at risk of being found) never appear in index results except to administrators.
    shielded: Mapped[bool] = mapped_column(default=False)
    # When the record last changed (shielding, NHS number, address...): an incremental read of returns
    # lists the child's episodes again, since what it may be sent depends on the record.
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=now)

    @property
    def display_name(self) -> str:
        return f"{self.given_names} {self.family_name}"
