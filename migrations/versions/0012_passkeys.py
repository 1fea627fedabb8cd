"""passkeys: WebAuthn credentials, single-use challenges and per-authority, per-role requirements

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 15:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import app.models.base
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'passkey',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('credential_id', sa.String(length=1400), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('transports', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'),
                  nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('aaguid', sa.String(length=36), nullable=True),
        sa.Column('backed_up', sa.Boolean(), nullable=False),
        sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_passkey_user_id_app_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_passkey_credential_id')),
    )
    op.create_index(op.f('ix_passkey_user_id'), 'passkey', ['user_id'], unique=False)
    op.create_table(
        'passkey_challenge',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('web_session_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['web_session_id'], ['web_session.id'],
                                name=op.f('fk_passkey_challenge_web_session_id_web_session'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_passkey_challenge_user_id_app_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey_challenge')),
    )
    op.create_index(op.f('ix_passkey_challenge_web_session_id'), 'passkey_challenge', ['web_session_id'],
                    unique=False)
    op.create_table(
        'passkey_requirement',
        sa.Column('authority_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('set_by_id', sa.Integer(), nullable=True),
        sa.Column('set_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['authority_id'], ['authority.id'],
                                name=op.f('fk_passkey_requirement_authority_id_authority'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['set_by_id'], ['app_user.id'], name=op.f('fk_passkey_requirement_set_by_id_app_user')),
        sa.PrimaryKeyConstraint('authority_id', 'role', name=op.f('pk_passkey_requirement')),
    )


def downgrade() -> None:
    op.drop_table('passkey_requirement')
    op.drop_index(op.f('ix_passkey_challenge_web_session_id'), table_name='passkey_challenge')
    op.drop_table('passkey_challenge')
    op.drop_index(op.f('ix_passkey_user_id'), table_name='passkey')
    op.drop_table('passkey')
