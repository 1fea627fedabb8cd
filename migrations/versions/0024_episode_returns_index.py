"""episode returns index: one authority's episodes in id order, for the API's pages of returns

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 10:10:00.000000

GET /api/v1/reports/episodes pages through an authority's episodes by id (keyset pagination). With
this index a page reads its own rows, whatever the size of the authority or of the national table.
"""
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_episode_authority_id", "episode", ["authority_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_episode_authority_id", table_name="episode")
