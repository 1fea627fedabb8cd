"""released transfers: a receiving administrator asks, the sending authority releases or declines

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import app.models.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transfer_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reference', sa.String(length=40), nullable=False),
        sa.Column('given_names', sa.String(length=200), nullable=False),
        sa.Column('family_name', sa.String(length=200), nullable=False),
        sa.Column('date_of_birth', sa.Date(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('to_authority_id', sa.Integer(), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        sa.Column('requested_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('episode_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('release_id', sa.String(length=64), nullable=True),
        sa.Column('expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('used_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('used_by_id', sa.Integer(), nullable=True),
        sa.Column('new_episode_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['to_authority_id'], ['authority.id'],
                                name=op.f('fk_transfer_request_to_authority_id_authority')),
        sa.ForeignKeyConstraint(['requested_by_id'], ['app_user.id'],
                                name=op.f('fk_transfer_request_requested_by_id_app_user')),
        sa.ForeignKeyConstraint(['episode_id'], ['episode.id'], name=op.f('fk_transfer_request_episode_id_episode')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['app_user.id'],
                                name=op.f('fk_transfer_request_decided_by_id_app_user')),
        sa.ForeignKeyConstraint(['used_by_id'], ['app_user.id'], name=op.f('fk_transfer_request_used_by_id_app_user')),
        sa.ForeignKeyConstraint(['new_episode_id'], ['episode.id'],
                                name=op.f('fk_transfer_request_new_episode_id_episode')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer_request')),
        sa.UniqueConstraint('release_id', name=op.f('uq_transfer_request_release_id')),
    )
    op.create_index('ix_transfer_request_episode_status', 'transfer_request', ['episode_id', 'status'])
    op.create_index('ix_transfer_request_to_authority', 'transfer_request', ['to_authority_id', 'requested_at'])


def downgrade() -> None:
    op.drop_index('ix_transfer_request_to_authority', table_name='transfer_request')
    op.drop_index('ix_transfer_request_episode_status', table_name='transfer_request')
    op.drop_table('transfer_request')
