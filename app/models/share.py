"""Decisions under the duty to share (Children's Wellbeing and Schools Act 2026 s.16LA): sharing
named records of an episode without the family's consent, or deciding not to, with the reasons."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime
from .episode import Episode
from .people import Organisation, User
from .process import ProcessVersion

# awaiting_approval -> granted -> expired; awaiting_approval -> rejected; not_shared is recorded as
# decided. A grant past its expiry gives no access whether or not the expiry step has run yet.
SHARE_STATUSES = ("awaiting_approval", "granted", "rejected", "expired", "not_shared")


class ShareDecision(Base):
    """One decision to share (or not to share) records of an episode without consent. Its approval
    runs as a `duty_to_share` process of its own, whose state is kept here."""

    __tablename__ = "share_decision"
    __table_args__ = (
        Index("ix_share_decision_episode", "episode_id", "asked_at"),
        Index("ix_share_decision_recipient", "recipient_user_id", "status"),
        Index("ix_share_decision_due", "next_timer_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    episode: Mapped[Episode] = relationship()
    asked_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    asked_by: Mapped[User] = relationship(foreign_keys=[asked_by_id])
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Shared with one eCAF user, or with the practitioners of one organisation.
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recipient_user: Mapped[User | None] = relationship(foreign_keys=[recipient_user_id])
    recipient_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    recipient_organisation: Mapped[Organisation | None] = relationship()
    records: Mapped[list] = mapped_column(JSONType)  # record keys, e.g. "artefact:assessment", "attachment:4"
    consent_position: Mapped[str] = mapped_column(String(20))  # the episode's consent when asked
    purpose: Mapped[str | None] = mapped_column(Text)
    detriment_reasoning: Mapped[str | None] = mapped_column(Text)  # why sharing is not more detrimental
    not_sharing_reason: Mapped[str | None] = mapped_column(Text)
    tell_family: Mapped[bool] = mapped_column(default=True)
    family_email: Mapped[str | None] = mapped_column(String(320))
    not_telling_reason: Mapped[str | None] = mapped_column(Text)  # why telling the family would be detrimental
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(Text)
    # The approval process (processes/duty_to_share.bpmn): its version and saved state.
    process_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    process_version: Mapped[ProcessVersion | None] = relationship()
    state: Mapped[str | None] = mapped_column(Text)
    serializer_version: Mapped[str | None] = mapped_column(String(10))
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def recipient_name(self) -> str:
        if self.recipient_user is not None:
            return self.recipient_user.full_name
        return self.recipient_organisation.name if self.recipient_organisation else "nobody"
