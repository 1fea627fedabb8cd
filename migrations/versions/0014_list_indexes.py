"""list indexes: the administrators' lists, the task list and the search requests queue at a million episodes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 21:20:00.000000

B-tree indexes only (no extension is needed, and SQLite gets the same ones): each list reads one
authority's episodes through an index that starts with the authority, so its cost follows the
authority's size, not the country's.
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_READY = "status = 'ready'"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # At risk, waiting on a timer and late deadlines: one authority's episodes of a status by next deadline.
    # On PostgreSQL it carries what the at-risk test reads, so that count never visits the table.
    op.create_index("ix_episode_authority_status_timer", "episode", ["authority_id", "status", "next_timer_at"],
                    postgresql_include=["stage", "submitted_at", "child_protection", "id"])
    # The lists of one status (errored, suspended, closed, stuck) walk it in page order, ids included, so a
    # page's key and the stuck count are read from the index alone.
    op.drop_index("ix_episode_authority_status_updated", table_name="episode")
    op.create_index("ix_episode_authority_status_updated", "episode", ["authority_id", "status", "updated_at", "id"])
    # Reports count deletions per month, as they count starts, submissions and closures.
    op.create_index("ix_episode_authority_deleted", "episode", ["authority_id", "deleted_at"])
    # A child's episodes, closed ones too (the one-open-per-child index holds only open ones).
    op.create_index("ix_episode_child", "episode", ["child_id"])
    # Overdue and stuck ask of each episode "is a task ready (and since when due)?": answered from the index.
    op.create_index("ix_human_task_episode_ready", "human_task", ["episode_id", "due_at"],
                    sqlite_where=sa.text(_READY), postgresql_where=sa.text(_READY))
    # Pending deletion starts from the authority's few 35-day alerts, not from its episodes.
    op.create_index("ix_admin_alert_authority_kind", "admin_alert", ["authority_id", "kind", "episode_id"])
    # The search requests queue compares names as typed, birthdays and postcode districts.
    op.create_index("ix_child_family_name_folded", "child", [sa.text("lower(trim(family_name))")])
    op.create_index("ix_child_given_names_folded", "child", [sa.text("lower(trim(given_names))")])
    op.create_index("ix_child_date_of_birth", "child", ["date_of_birth"])
    if postgresql:
        # Pattern ops let a district's prefix (LIKE 'W9 %') use the index whatever the collation.
        op.drop_index("ix_child_postcode", table_name="child")
        op.execute("CREATE INDEX ix_child_postcode ON child (postcode varchar_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_child_postcode", table_name="child")
        op.create_index("ix_child_postcode", "child", ["postcode"])
    for name, table in (("ix_child_date_of_birth", "child"), ("ix_child_given_names_folded", "child"),
                        ("ix_child_family_name_folded", "child"), ("ix_admin_alert_authority_kind", "admin_alert"),
                        ("ix_human_task_episode_ready", "human_task"), ("ix_episode_child", "episode"),
                        ("ix_episode_authority_deleted", "episode"), ("ix_episode_authority_status_timer", "episode")):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_episode_authority_status_updated", table_name="episode")
    op.create_index("ix_episode_authority_status_updated", "episode", ["authority_id", "status", "updated_at"])
