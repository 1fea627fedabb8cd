"""current memberships and a child's episodes, read from the index alone

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 00:30:00.000000

Every practitioner's list starts from "the episodes I am a member of" (removed members excluded). The
index on (user, episode) had to visit each membership row to read whether it was removed: a
practitioner with 1,500 ready tasks cost 1,500 visits to the table per task list. Holding only
current memberships, the index answers alone. Every other read of a user's memberships either asks
for current ones too or names the episode (ix_episode_member_episode_id).

A search request's candidates are the authority's episodes of children with a key in common, nationally
some 850 children for one request at a million episodes: on PostgreSQL the index of a child's episodes
carries the authority, status, start and id asked of each, so those episodes are not visited either.
"""
from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_CURRENT = "removed_at IS NULL"


def upgrade() -> None:
    op.drop_index("ix_episode_member_user", table_name="episode_member")
    op.create_index("ix_episode_member_user", "episode_member", ["user_id", "episode_id"],
                    sqlite_where=sa.text(_CURRENT), postgresql_where=sa.text(_CURRENT))
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_episode_child", table_name="episode")
        op.create_index("ix_episode_child", "episode", ["child_id"],
                        postgresql_include=["authority_id", "status", "started_at", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_episode_child", table_name="episode")
        op.create_index("ix_episode_child", "episode", ["child_id"])
    op.drop_index("ix_episode_member_user", table_name="episode_member")
    op.create_index("ix_episode_member_user", "episode_member", ["user_id", "episode_id"])
