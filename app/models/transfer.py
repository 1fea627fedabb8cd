"""Requests to move a child's episode to another local authority, and their release."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .api_client import ApiClient
from .base import Base, UTCDateTime
from .episode import Episode
from .people import Authority, User

# requested -> released -> used; requested -> declined. A release past its expiry is expired
# without a write (see TransferRequest.live).
TRANSFER_STATUSES = ("requested", "released", "declined", "used")


class TransferRequest(Base):
    __tablename__ = "transfer_request"
    __table_args__ = (
        Index("ix_transfer_request_episode_status", "episode_id", "status"),
        Index("ix_transfer_request_to_authority", "to_authority_id", "requested_at"),
        # Asked by a person or by a client system acting for the authority: never by nobody.
        CheckConstraint("requested_by_id IS NOT NULL OR requested_by_client_id IS NOT NULL", name="one_asker"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # What the receiving administrator typed, kept as typed: a request that matched nothing looks to
    # them exactly like one waiting for the other authority, so the form reveals no episode.
    reference: Mapped[str] = mapped_column(String(40))
    given_names: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    to_authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    to_authority: Mapped[Authority] = relationship()
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    requested_by_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    requested_by_client: Mapped[ApiClient | None] = relationship(foreign_keys=[requested_by_client_id])
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The open episode, of another authority, that the details matched; None when they matched none.
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episode.id"))
    episode: Mapped[Episode | None] = relationship(foreign_keys=[episode_id])
    status: Mapped[str] = mapped_column(String(20), default="requested")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    decided_by_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_client.id"))
    decided_by_client: Mapped[ApiClient | None] = relationship(foreign_keys=[decided_by_client_id])
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Named in the signed transfer file; random, so it cannot be guessed from the request's id.
    release_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    new_episode_id: Mapped[int | None] = mapped_column(ForeignKey("episode.id"))

    def live(self, moment: datetime) -> bool:
        """Released, not used, not expired: a transfer file naming it may be imported."""
        return self.status == "released" and self.expires_at is not None and moment < self.expires_at

    @property
    def asker_name(self) -> str:
        """Who asked, as the pages name them: a person, or "<name> (client system)"."""
        return _who(self.requested_by, self.requested_by_client)

    @property
    def decider_name(self) -> str | None:
        return _who(self.decided_by, self.decided_by_client) if self.decided_at else None


def _who(user: User | None, client: ApiClient | None) -> str:
    if client is not None:
        return f"{client.name} (client system)"
    return user.full_name if user is not None else "Unknown"
