"""What administrators work from: deadline alerts, account applications and password resets."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime
from .episode import Episode
from .people import Organisation, User

ALERT_KINDS = ("assessment_overdue", "child_protection_overdue", "service_response_overdue")
APPLICATION_STATUSES = ("pending", "approved", "rejected")


class AdminAlert(Base):
    """A deadline the engine says was missed: the administrator calls the originator and records it."""

    __tablename__ = "admin_alert"
    __table_args__ = (Index("ix_admin_alert_open", "authority_id", "resolved_at"),
                      # Pending deletion starts from the authority's few 35-day alerts, not from its episodes.
                      Index("ix_admin_alert_authority_kind", "authority_id", "kind", "episode_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    episode: Mapped[Episode] = relationship()
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    resolved_by: Mapped[User | None] = relationship()
    resolution: Mapped[str | None] = mapped_column(Text)


class AccountApplication(Base):
    """A request for an account from the public "apply" form, waiting for an administrator."""

    __tablename__ = "account_application"
    __table_args__ = (Index("ix_account_application_status", "status", "submitted_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    job_title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    organisation: Mapped[Organisation] = relationship()
    manager_name: Mapped[str | None] = mapped_column(String(200))
    manager_email: Mapped[str | None] = mapped_column(String(254))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class PasswordReset(Base):
    """A one-time link to set a new password: only its hash is stored, and it works once."""

    __tablename__ = "password_reset"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
