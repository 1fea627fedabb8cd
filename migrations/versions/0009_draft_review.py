"""two people for every deploy: a draft is submitted, reviewed by another process owner, then deployed

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import app.models.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite adds foreign keys only by copying the table.
    with op.batch_alter_table('process_draft', schema=None) as batch_op:
        # Drafts open before this start at editing: they need submitting and approving like any other.
        batch_op.add_column(sa.Column('review_status', sa.String(length=20), server_default='editing',
                                      nullable=False))
        batch_op.add_column(sa.Column('submitted_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('submitted_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('submitted_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('review_reason', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_process_draft_submitted_by_id_app_user'), 'app_user',
                                    ['submitted_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_process_draft_reviewed_by_id_app_user'), 'app_user',
                                    ['reviewed_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('process_draft', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_process_draft_reviewed_by_id_app_user'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_process_draft_submitted_by_id_app_user'), type_='foreignkey')
        batch_op.drop_column('review_reason')
        batch_op.drop_column('approved_hash')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('submitted_hash')
        batch_op.drop_column('submitted_at')
        batch_op.drop_column('submitted_by_id')
        batch_op.drop_column('review_status')
