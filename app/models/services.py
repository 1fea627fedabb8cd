"""Targeted and specialist services an episode can ask for help, their teams, and uploaded evidence."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime
from .people import Authority, User


class Service(Base):
    """A service of one authority that takes requests (Day Care, Educational Psychology, ...)."""

    __tablename__ = "service"
    __table_args__ = (UniqueConstraint("authority_id", "name", name="uq_service_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    authority: Mapped[Authority] = relationship()
    name: Mapped[str] = mapped_column(String(200))
    offers: Mapped[str] = mapped_column(Text)  # what it offers, in the words the practitioner reads
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    # What a request must show, e.g. ["Assessment", "Action plan", "Support already in place"].
    required_evidence: Mapped[list] = mapped_column(JSONType, default=list)
    response_working_days: Mapped[int] = mapped_column(default=10)
    active: Mapped[bool] = mapped_column(default=True)
    members: Mapped[list["ServiceTeamMember"]] = relationship(back_populates="service",
                                                              cascade="all, delete-orphan")


class ServiceTeamMember(Base):
    __tablename__ = "service_team_member"
    __table_args__ = (UniqueConstraint("service_id", "user_id", name="uq_service_team_member"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"), index=True)
    service: Mapped[Service] = relationship(back_populates="members")
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    user: Mapped[User] = relationship()
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attachment(Base):
    """An uploaded file: its bytes live in the attachment store, never in a database row."""

    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_episode", "episode_id", "uploaded_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    # What it is evidence for, e.g. "service_request:12"; None for the episode as a whole.
    attached_to: Mapped[str | None] = mapped_column(String(60), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # as uploaded, for the download's name only
    content_type: Mapped[str] = mapped_column(String(100))  # as detected from the content
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    uploaded_by: Mapped[User | None] = relationship()
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


SERVICE_REQUEST_STATUSES = ("draft", "sent", "more_information", "accepted", "declined", "cancelled")


class ServiceRequest(Base):
    """One request from an episode to a service. The episode's workflow runs it (a called
    `service_request` process); this row says where it stands so lists never load a workflow."""

    __tablename__ = "service_request"
    __table_args__ = (
        Index("ix_service_request_episode", "episode_id", "created_at"),
        Index("ix_service_request_service_status", "service_id", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    service: Mapped[Service] = relationship(foreign_keys=[service_id])
    # The service it was first sent to, when a team redirected it.
    redirected_from_id: Mapped[int | None] = mapped_column(ForeignKey("service.id"))
    redirected_from: Mapped[Service | None] = relationship(foreign_keys=[redirected_from_id])
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    status: Mapped[str] = mapped_column(String(20), default="draft")
    # The request as last sent: needs, evidence, support already in place.
    content: Mapped[dict | None] = mapped_column(JSONType)
    question: Mapped[str | None] = mapped_column(Text)  # the team's request for more information
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Contribution(Base):
    """An invitation to a member to write named sections of the assessment, and what came of it."""

    __tablename__ = "contribution"
    __table_args__ = (Index("ix_contribution_episode", "episode_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    contributor_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    contributor: Mapped[User] = relationship(foreign_keys=[contributor_id])
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    invited_by: Mapped[User] = relationship(foreign_keys=[invited_by_id])
    sections: Mapped[list] = mapped_column(JSONType)  # names of assessment sections
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="invited")  # invited, submitted, accepted, returned
    content: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
