"""The CAF episode: workflow state, projections of its tasks, and its artefacts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JSONType, UTCDateTime
from .child import Child
from .people import Authority, User
from .process import ProcessVersion

OPEN_STATUSES = ("open", "error", "suspended")
STATUSES = OPEN_STATUSES + ("closed", "deleted")
STAGES = ("preparation", "assessment", "delivery", "closure", "closed")
_OPEN_SQL = "status IN ('open', 'error', 'suspended')"
MOVED_OUTCOME = "moved_to_another_authority"  # the outcome of an episode moved to another authority by transfer
FOLLOW_UP_FAILED_SQL = "status = 'closed' AND error_task IS NOT NULL"


class Episode(Base):
    __tablename__ = "episode"
    __table_args__ = (
        # Only one open episode per child, enforced by the database itself.
        Index("uq_episode_one_open_per_child", "child_id", unique=True,
              sqlite_where=text(_OPEN_SQL), postgresql_where=text(_OPEN_SQL)),
        Index("ix_episode_due", "next_timer_at"),
        Index("ix_episode_status_stage", "status", "stage"),
        # The administrators' lists: one authority's episodes by status, newest change first (ids included,
        # so a page's key and the stuck count are read from the index alone).
        Index("ix_episode_authority_status_updated", "authority_id", "status", "updated_at", "id"),
        # Newest change first across statuses: the walk stops after one page instead of sorting them all.
        Index("ix_episode_authority_updated", "authority_id", "updated_at", "id"),
        Index("ix_episode_lead_updated", "lead_professional_id", "updated_at"),
        # Reports count submissions and closures per month.
        Index("ix_episode_authority_submitted", "authority_id", "submitted_at"),
        Index("ix_episode_authority_closed", "authority_id", "closed_at"),
        Index("ix_episode_authority_started", "authority_id", "started_at"),
        Index("ix_episode_authority_deleted", "authority_id", "deleted_at"),
        Index("ix_episode_authority_stage", "authority_id", "stage", "status"),
        # Returns over the API: one authority's episodes by id, a page at a time (a page reads its rows only).
        Index("ix_episode_authority_id", "authority_id", "id"),
        # At risk, waiting on a timer and late deadlines: one authority's episodes of a status by next deadline
        # (on PostgreSQL with what the at-risk test reads, so that count never visits the table).
        Index("ix_episode_authority_status_timer", "authority_id", "status", "next_timer_at",
              postgresql_include=["stage", "submitted_at", "child_protection", "id"]),
        # A child's episodes, closed ones too (the one-open-per-child index holds only open ones); on
        # PostgreSQL with what a search request's candidates are chosen by (migration 0016).
        Index("ix_episode_child", "child_id", postgresql_include=["authority_id", "status", "started_at", "id"]),
        # Closed episodes whose six-month outcome check failed: errored for the administrators, yet closed
        # (a new CAF may be open for the child). Few, so the errored list finds them without a scan.
        Index("ix_episode_follow_up_failed", "authority_id", sqlite_where=text(FOLLOW_UP_FAILED_SQL),
              postgresql_where=text(FOLLOW_UP_FAILED_SQL)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id", ondelete="SET NULL"))
    child: Mapped[Child | None] = relationship()
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    authority: Mapped[Authority] = relationship()
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    process_version: Mapped[ProcessVersion] = relationship()
    sibling_group: Mapped[str | None] = mapped_column(String(40), index=True)

    status: Mapped[str] = mapped_column(String(20), default="open")
    stage: Mapped[str] = mapped_column(String(20), default="preparation")
    outcome: Mapped[str | None] = mapped_column(String(60))  # why it ended
    child_protection: Mapped[bool] = mapped_column(default=False)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    # none, given, refused or withdrawn: the policy reads it on every query, so it lives on the row.
    consent_state: Mapped[str] = mapped_column(String(20), default="none")
    # Set on an episode imported from another authority: the old episode's reference there.
    transferred_from: Mapped[str | None] = mapped_column(String(40))

    # Workflow state without the spec (the spec is stored once per process version).
    state: Mapped[str | None] = mapped_column(Text)
    serializer_version: Mapped[str | None] = mapped_column(String(10))
    lock_version: Mapped[int] = mapped_column(default=0)
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_task: Mapped[str | None] = mapped_column(String(200))

    originator_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    originator: Mapped[User] = relationship(foreign_keys=[originator_id])
    lead_professional_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    lead_professional: Mapped[User | None] = relationship(foreign_keys=[lead_professional_id])

    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": lock_version}

    @property
    def reference(self) -> str:
        return episode_reference(self.authority.code if self.authority else None, self.id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def step_failed(self) -> bool:
        """An automatic step failed: an errored episode, or a closed one whose outcome check failed."""
        return self.status == "error" or (self.status == "closed" and self.error_task is not None)


def episode_reference(authority_code: str | None, episode_id: int) -> str:
    """What people call an episode: its authority's code and number ("WMN-000123"); lists that read
    columns rather than episodes make it from the two."""
    return f"{authority_code or 'CAF'}-{episode_id:06d}"


class HumanTask(Base):
    """A user task of an episode, projected so task lists never load a workflow."""

    __tablename__ = "human_task"
    __table_args__ = (
        UniqueConstraint("episode_id", "task_id", name="uq_human_task_instance"),
        Index("ix_human_task_ready", "status", "assigned_user_id"),
        Index("ix_human_task_due", "status", "due_at"),
        # Overdue and stuck ask of each episode "is a task ready (and since when due)?": answered from the index.
        Index("ix_human_task_episode_ready", "episode_id", "due_at",
              sqlite_where=text("status = 'ready'"), postgresql_where=text("status = 'ready'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    episode: Mapped[Episode] = relationship()
    task_id: Mapped[str] = mapped_column(String(40))  # SpiffWorkflow task instance id
    name: Mapped[str] = mapped_column(String(100))  # BPMN element id
    title: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str | None] = mapped_column(String(20))
    lane: Mapped[str | None] = mapped_column(String(100))  # the role that performs it
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    assigned_user: Mapped[User | None] = relationship(foreign_keys=[assigned_user_id])
    # Set when an administrator reassigns the task: the lane's usual assignee no longer takes it back.
    reassigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    form: Mapped[str | None] = mapped_column(String(200))
    ui_form: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="ready")  # ready, completed, cancelled
    draft: Mapped[dict | None] = mapped_column(JSONType)
    submitted_data: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])
    # Set on the tasks of a called service request or contribution process: whose task it is.
    service_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_request.id", ondelete="CASCADE"), index=True)
    contribution_id: Mapped[int | None] = mapped_column(ForeignKey("contribution.id", ondelete="CASCADE"))


class Artefact(Base):
    """A record the episode keeps: assessment versions, consent statements, plans, reviews..."""

    __tablename__ = "artefact"
    __table_args__ = (UniqueConstraint("episode_id", "kind", "version", name="uq_artefact_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episode.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(default=1)
    data: Mapped[dict] = mapped_column(JSONType)
    human_task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_by: Mapped[User | None] = relationship()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
