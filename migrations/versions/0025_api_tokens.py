"""api tokens: short-lived access tokens from the OAuth 2 client-credentials grant

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 10:10:00.000000

Only each token's SHA-256 is kept; a client's expired tokens are deleted when it is issued another.
"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_client.id"], name="fk_api_token_client_id_api_client",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )
    op.create_index("ix_api_token_client_id", "api_token", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_api_token_client_id", table_name="api_token")
    op.drop_table("api_token")
