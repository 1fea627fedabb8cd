"""outcome records: headline outcomes chosen, progressed, met and sustained

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 04:40:00.000000

The Supporting Families outcome framework counts outcomes: which headline outcomes a plan aims at,
which were met at closure and which were still sustained six months later. Each statement is a row
written by the step that records it, so reports count rows by authority and month.
"""
from alembic import op
import sqlalchemy as sa

_FOLLOW_UP_FAILED = "status = 'closed' AND error_task IS NOT NULL"

from app.models.base import UTCDateTime

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.String(length=20), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("human_task_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["episode_id"], ["episode.id"], name="fk_outcome_record_episode_id_episode",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["authority_id"], ["authority.id"], name="fk_outcome_record_authority_id_authority"),
        sa.ForeignKeyConstraint(["human_task_id"], ["human_task.id"],
                                name="fk_outcome_record_human_task_id_human_task", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["app_user.id"], name="fk_outcome_record_recorded_by_id_app_user"),
        sa.PrimaryKeyConstraint("id", name="pk_outcome_record"),
    )
    op.create_index("ix_outcome_record_authority_stage_recorded", "outcome_record",
                    ["authority_id", "stage", "recorded_at"])
    op.create_index("ix_outcome_record_episode_stage", "outcome_record", ["episode_id", "stage", "id"])
    # A closed episode whose six-month check failed is errored for the administrators (few: a partial index).
    op.create_index("ix_episode_follow_up_failed", "episode", ["authority_id"],
                    sqlite_where=sa.text(_FOLLOW_UP_FAILED), postgresql_where=sa.text(_FOLLOW_UP_FAILED))


def downgrade() -> None:
    op.drop_index("ix_episode_follow_up_failed", table_name="episode")
    op.drop_index("ix_outcome_record_episode_stage", table_name="outcome_record")
    op.drop_index("ix_outcome_record_authority_stage_recorded", table_name="outcome_record")
    op.drop_table("outcome_record")
