"""Outcomes: the Supporting Families headline outcomes a plan aims at, and what was recorded of each.

A row is one statement about one outcome of one episode at one moment: chosen at an action plan,
progress at a review or at closure, sustained (or not) six months after closure. Reports count these
rows, so they never read workflow state or form submissions."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime

# The ten headline outcomes of the Supporting Families outcome framework (2022), by stable code.
HEADLINE_OUTCOMES = {
    "education": "Getting a good education",
    "early_years": "Good early years development",
    "health": "Improved mental and physical health",
    "substance_use": "Promoting recovery and reducing harm from substance use",
    "family_relationships": "Improved family relationships",
    "safe_from_abuse": "Children safe from abuse and exploitation",
    "crime": "Crime prevention and tackling crime",
    "domestic_abuse": "Safe from domestic abuse",
    "housing": "Secure housing",
    "financial_stability": "Financial stability",
}
# Where in the procedure a statement was made, and what it may say there.
OUTCOME_STAGES = {
    "action_plan": ("chosen",),
    "review": ("not_started", "some_progress", "met", "not_met"),
    "closure": ("not_started", "some_progress", "met", "not_met"),
    "six_months": ("sustained", "not_sustained"),
}
PROGRESS_LABELS = {"chosen": "Chosen", "not_started": "Not started", "some_progress": "Some progress",
                   "met": "Met", "not_met": "Not met", "sustained": "Sustained", "not_sustained": "Not sustained"}


class OutcomeRecord(Base):
    __tablename__ = "outcome_record"
    __table_args__ = (
        # Reports: one authority's statements of a stage in a period.
        Index("ix_outcome_record_authority_stage_recorded", "authority_id", "stage", "recorded_at"),
        # A form's checks: an episode's latest statements of a stage.
        Index("ix_outcome_record_episode_stage", "episode_id", "stage", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    outcome: Mapped[str] = mapped_column(String(40))  # a HEADLINE_OUTCOMES code
    stage: Mapped[str] = mapped_column(String(20))  # an OUTCOME_STAGES key
    progress: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str | None] = mapped_column(Text)
    # The form the statement came from: all statements of one submission share it.
    human_task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="SET NULL"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
