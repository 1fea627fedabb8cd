"""Who works on an episode and what the family agreed to: membership and consent."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime
from .people import Organisation, User

MEMBER_ROLES = ("originator", "lead_professional", "tac_member", "contributor", "service_contact")
CONSENT_STATES = ("none", "given", "refused", "withdrawn")


class EpisodeMember(Base):
    """One person's part in one episode. Removal ends it; the row stays as history."""

    __tablename__ = "episode_member"
    # Current memberships only: what "my episodes" asks, answered from the index (migration 0016).
    __table_args__ = (Index("ix_episode_member_user", "user_id", "episode_id",
                            sqlite_where=text("removed_at IS NULL"), postgresql_where=text("removed_at IS NULL")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    role: Mapped[str] = mapped_column(String(20))
    # Contributors edit named sections of the assessment only.
    sections: Mapped[list | None] = mapped_column(JSONType)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    added_by: Mapped[User | None] = relationship(foreign_keys=[added_by_id])
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    removed_by: Mapped[User | None] = relationship(foreign_keys=[removed_by_id])
    removal_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def active(self) -> bool:
        return self.removed_at is None


class Consent(Base):
    """A consent statement (CAF.md 3.12), queryable so the policy can gate sharing on it."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    artefact_id: Mapped[int | None] = mapped_column(ForeignKey("artefact.id", ondelete="SET NULL"))
    subject: Mapped[str | None] = mapped_column(String(30))  # child | young_person_self
    given_by_name: Mapped[str | None] = mapped_column(String(500))
    relationship_to_child: Mapped[str | None] = mapped_column(String(500))
    has_parental_responsibility: Mapped[bool] = mapped_column(default=False)
    competence_assessed: Mapped[bool] = mapped_column(default=False)
    to_storage: Mapped[bool] = mapped_column(default=False)
    to_sharing: Mapped[bool] = mapped_column(default=False)
    permitted: Mapped[dict | None] = mapped_column(JSONType)  # {"kinds": [...], "names": [...]}
    excluded: Mapped[dict | None] = mapped_column(JSONType)  # {"kinds": [...], "names": [...]}
    method: Mapped[str | None] = mapped_column(String(30))
    given_on: Mapped[date | None] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id])
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_name: Mapped[str | None] = mapped_column(String(500))
    withdrawal_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def current(self) -> bool:
        return self.withdrawn_at is None and self.to_sharing


class ConsentExclusion(Base):
    """An organisation, or a kind of organisation, the family said must never see the CAF."""

    __tablename__ = "consent_exclusion"
    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consent.id", ondelete="CASCADE"), index=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    organisation_kind: Mapped[str | None] = mapped_column(String(40))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    organisation: Mapped[Organisation | None] = relationship()
