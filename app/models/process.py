"""Deployed process models: immutable versions of the BPMN and its forms."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime


class ProcessVersion(Base):
    """One deployment of a process model. Never changed after it is written."""

    __tablename__ = "process_version"
    __table_args__ = (
        UniqueConstraint("process_id", "version", name="uq_process_version_number"),
        UniqueConstraint("process_id", "content_hash", name="uq_process_version_hash"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    # The model's files and parsed specs (hundreds of KB) are read only when asked for: a step or a form
    # page takes them from the in-process cache keyed by content hash (app/engine/library.py).
    bpmn_files: Mapped[dict] = mapped_column(JSONType, deferred=True)  # file name -> XML text
    forms: Mapped[dict] = mapped_column(JSONType, deferred=True)  # file name -> JSON text
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)  # serialized spec + subprocess specs
    serializer_version: Mapped[str] = mapped_column(String(10))
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    change_note: Mapped[str | None] = mapped_column(Text)

    @property
    def label(self) -> str:
        return f"{self.process_id} v{self.version}"


class ProcessMigration(Base):
    """What happened when one episode was moved (or refused a move) to another process version."""

    __tablename__ = "process_migration"
    __table_args__ = (Index("ix_process_migration_batch", "batch", "episode_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[str] = mapped_column(String(36))  # one owner's action over many episodes
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    from_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    status: Mapped[str] = mapped_column(String(20))  # migrated, refused, failed
    reasons: Mapped[list | None] = mapped_column(JSONType)  # why it could not migrate
    reset: Mapped[list | None] = mapped_column(JSONType)  # what was reset (drafts, timers)
    change_note: Mapped[str | None] = mapped_column(Text)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
