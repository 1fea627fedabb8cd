"""outbox messages carry the id of the request or job that wrote them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: rows written before it have no request to name.
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('request_id')
