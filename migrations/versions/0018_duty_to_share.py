"""duty to share: decisions to share an episode's records without consent, or not to

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 04:30:00.000000

Children's Wellbeing and Schools Act 2026 s.16LA. Each row is one decision, its reasons, who asked
and who approved, the records and recipient it covers, its expiry, and the saved state of its own
approval process (processes/duty_to_share.bpmn).
"""
from alembic import op
import sqlalchemy as sa
import app.models.base
from sqlalchemy.dialects import postgresql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'share_decision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('episode_id', sa.Integer(), nullable=False),
        sa.Column('asked_by_id', sa.Integer(), nullable=False),
        sa.Column('asked_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('recipient_user_id', sa.Integer(), nullable=True),
        sa.Column('recipient_organisation_id', sa.Integer(), nullable=True),
        sa.Column('records', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('consent_position', sa.String(length=20), nullable=False),
        sa.Column('purpose', sa.Text(), nullable=True),
        sa.Column('detriment_reasoning', sa.Text(), nullable=True),
        sa.Column('not_sharing_reason', sa.Text(), nullable=True),
        sa.Column('tell_family', sa.Boolean(), nullable=False),
        sa.Column('family_email', sa.String(length=320), nullable=True),
        sa.Column('not_telling_reason', sa.Text(), nullable=True),
        sa.Column('expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.Column('process_version_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.Text(), nullable=True),
        sa.Column('serializer_version', sa.String(length=10), nullable=True),
        sa.Column('next_timer_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['episode_id'], ['episode.id'], ondelete='CASCADE',
                                name=op.f('fk_share_decision_episode_id_episode')),
        sa.ForeignKeyConstraint(['asked_by_id'], ['app_user.id'], name=op.f('fk_share_decision_asked_by_id_app_user')),
        sa.ForeignKeyConstraint(['recipient_user_id'], ['app_user.id'],
                                name=op.f('fk_share_decision_recipient_user_id_app_user')),
        sa.ForeignKeyConstraint(['recipient_organisation_id'], ['organisation.id'],
                                name=op.f('fk_share_decision_recipient_organisation_id_organisation')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['app_user.id'],
                                name=op.f('fk_share_decision_decided_by_id_app_user')),
        sa.ForeignKeyConstraint(['process_version_id'], ['process_version.id'],
                                name=op.f('fk_share_decision_process_version_id_process_version')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_share_decision')),
    )
    op.create_index('ix_share_decision_episode', 'share_decision', ['episode_id', 'asked_at'])
    op.create_index('ix_share_decision_recipient', 'share_decision', ['recipient_user_id', 'status'])
    op.create_index('ix_share_decision_due', 'share_decision', ['next_timer_at'])
    op.create_index(op.f('ix_share_decision_recipient_organisation_id'), 'share_decision',
                    ['recipient_organisation_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_share_decision_recipient_organisation_id'), table_name='share_decision')
    op.drop_index('ix_share_decision_due', table_name='share_decision')
    op.drop_index('ix_share_decision_recipient', table_name='share_decision')
    op.drop_index('ix_share_decision_episode', table_name='share_decision')
    op.drop_table('share_decision')
