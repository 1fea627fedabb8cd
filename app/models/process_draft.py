"""Drafts of a process model that a process owner is editing: changed freely, reviewed by a second
process owner, deployed once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime
from .people import User
from .process import ProcessVersion


class ProcessDraft(Base):
    __tablename__ = "process_draft"
    __table_args__ = (Index("ix_process_draft_process_status", "process_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(100))
    # The version it was opened from; None for a model uploaded from files.
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    base_version: Mapped[ProcessVersion | None] = relationship(foreign_keys=[base_version_id])
    title: Mapped[str] = mapped_column(String(200))
    bpmn_files: Mapped[dict] = mapped_column(JSONType)  # file name -> XML text
    forms: Mapped[dict] = mapped_column(JSONType)  # file name -> JSON text
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, deployed, discarded
    # While open, review_status is editing, submitted (waiting for review), approved or rejected.
    deployed_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_version.id"))
    deployed_version: Mapped[ProcessVersion | None] = relationship(foreign_keys=[deployed_version_id])
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)  # the change note, given when it is submitted for review
    # Goes up with every save, so a save based on an older copy is refused rather than lost.
    revision: Mapped[int] = mapped_column(default=1)
    # Two people for every deploy: one submits, another approves exactly this content (by its hash).
    review_status: Mapped[str] = mapped_column(String(20), default="editing", server_default="editing")
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_hash: Mapped[str | None] = mapped_column(String(64))
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))  # who approved or rejected it
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_hash: Mapped[str | None] = mapped_column(String(64))
    review_reason: Mapped[str | None] = mapped_column(Text)
