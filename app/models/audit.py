"""The audit trail: append-only, written in the same transaction as what it records."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_episode", "episode_id", "at"), Index("ix_audit_actor", "actor_id", "at"),
                      Index("ix_audit_at", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    action: Mapped[str] = mapped_column(String(60))
    # No foreign key: the row must outlive a deleted episode as its stub.
    episode_id: Mapped[int | None]
    detail: Mapped[dict | None] = mapped_column(JSONType)
    # The hash chain: rows are numbered in commit order and each carries its predecessor's hash.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))
