"""received notices: assessments held in other systems, reported to the national index by API clients

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 10:10:00.000000

One row per (client, the client's own reference). The search keys are indexed as index_entry's are,
so the index search finds notices by date of birth, postcode district (a prefix) and NHS number.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.models.base import UTCDateTime

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "received_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("assessment", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("nhs_number", sa.String(length=10), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("given_names", sa.String(length=200), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=True),
        sa.Column("contact", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["api_client.id"], name="fk_received_notice_client_id_api_client"),
        sa.ForeignKeyConstraint(["authority_id"], ["authority.id"], name="fk_received_notice_authority_id_authority"),
        sa.PrimaryKeyConstraint("id", name="pk_received_notice"),
        sa.UniqueConstraint("client_id", "reference", name="uq_received_notice_client_id"),
    )
    op.create_index("ix_received_notice_date_of_birth", "received_notice", ["date_of_birth"])
    op.create_index("ix_received_notice_nhs_number", "received_notice", ["nhs_number"])
    if op.get_bind().dialect.name == "postgresql":
        # The search matches postcode districts by prefix: pattern ops let LIKE 'W9 %' use the index.
        op.execute("CREATE INDEX ix_received_notice_postcode ON received_notice (postcode varchar_pattern_ops)")
    else:
        op.create_index("ix_received_notice_postcode", "received_notice", ["postcode"])


def downgrade() -> None:
    op.drop_index("ix_received_notice_postcode", table_name="received_notice")
    op.drop_index("ix_received_notice_nhs_number", table_name="received_notice")
    op.drop_index("ix_received_notice_date_of_birth", table_name="received_notice")
    op.drop_table("received_notice")
