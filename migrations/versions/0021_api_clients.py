"""api clients: client systems calling the JSON API for an authority

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 05:30:00.000000

Each client holds scopes, an expiry date and a hashed secret; revoking keeps the row (and why)
so the audit trail's client names stay meaningful.
"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["authority_id"], ["authority.id"], name="fk_api_client_authority_id_authority"),
        sa.ForeignKeyConstraint(["created_by_id"], ["app_user.id"], name="fk_api_client_created_by_id_app_user"),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["app_user.id"], name="fk_api_client_revoked_by_id_app_user"),
        sa.PrimaryKeyConstraint("id", name="pk_api_client"),
        sa.UniqueConstraint("client_id", name="uq_api_client_client_id"),
    )
    op.create_index("ix_api_client_authority", "api_client", ["authority_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_api_client_authority", table_name="api_client")
    op.drop_table("api_client")
