"""list indexes: the administrators' lists, the task list and the index search at a million episodes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 21:20:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_OPEN = "status = 'open'"


def upgrade() -> None:
    # At risk and waiting on a timer: one authority's open episodes by their next deadline.
    op.create_index("ix_episode_authority_open_timer", "episode", ["authority_id", "next_timer_at"],
                    sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN))


def downgrade() -> None:
    op.drop_index("ix_episode_authority_open_timer", table_name="episode")
