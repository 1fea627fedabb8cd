"""child updated at: when a child's record last changed

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 11:05:00.000000

Returns read incrementally (GET /api/v1/reports/episodes?updated_since=) list a child's episodes again
when the record changes (shielded, an NHS number recorded), as what may be sent depends on it. Records
not changed since stay empty: they were sent as they stand.
"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("child") as batch:
        batch.add_column(sa.Column("updated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("child") as batch:
        batch.drop_column("updated_at")
