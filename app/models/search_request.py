"""Requests to the eCAF administrator to search for existing CAFs for one or more children."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime
from .child import Child
from .people import Authority, User

REQUEST_STATUSES = ("submitted", "answered")


class SearchRequest(Base):
    __tablename__ = "search_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"), index=True)
    authority: Mapped[Authority] = relationship()
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    children: Mapped[list["SearchRequestChild"]] = relationship(
        back_populates="request", order_by="SearchRequestChild.id", cascade="all, delete-orphan")

    @property
    def reference(self) -> str:
        return f"SR-{self.id:06d}"


class SearchRequestChild(Base):
    __tablename__ = "search_request_child"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("search_request.id", ondelete="CASCADE"), index=True)
    request: Mapped[SearchRequest] = relationship(back_populates="children")
    given_names: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    postcode: Mapped[str | None] = mapped_column(String(10))
    nhs_number: Mapped[str | None] = mapped_column(String(10))
    notes: Mapped[str | None] = mapped_column(Text)
    # Filled in by the administrator who answers the request.
    matched_child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id", ondelete="SET NULL"))
    matched_child: Mapped[Child | None] = relationship()
    matched_episode_id: Mapped[int | None] = mapped_column(ForeignKey("episode.id", ondelete="SET NULL"))
    match_note: Mapped[str | None] = mapped_column(Text)
