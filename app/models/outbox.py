"""Messages that leave the system, written inside a step and delivered after it commits."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app import request_ids

from .base import Base, JSONType, UTCDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episode.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # email, index
    kind: Mapped[str] = mapped_column(String(60))  # what it says: overdue_warning, index_notice, ...
    recipient: Mapped[str] = mapped_column(String(500))  # an email address or the index endpoint
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict | None] = mapped_column(JSONType)
    idempotency_key: Mapped[str] = mapped_column(String(600), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, sending, sent, failed, discarded
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The request or job that wrote it, wherever the row is made (a step, an account email): delivery
    # sends it on as X-Request-Id, and it leads back to that request's log lines and audit rows.
    request_id: Mapped[str | None] = mapped_column(String(64), default=request_ids.current)


class MailboxMessage(Base):
    """The local mailbox: where email goes when no SMTP server is configured."""

    __tablename__ = "mailbox_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id"), unique=True)
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)
