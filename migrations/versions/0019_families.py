"""families: children recorded together, their adults and how each adult is related to each child

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 04:15:00.000000

Children join a family through `family_child` (one family per child, a unique link) rather than a
column on `child`: the child's record is its identity and is changed elsewhere, and a family can be
forgotten without touching it. Children recorded before this revision have no family until a CAF is
started for a brother or sister from their episode page.
"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "family",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("postcode", sa.String(length=10), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=True),
    )
    op.create_table(
        "family_child",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("family_id", sa.Integer(), sa.ForeignKey("family.id", ondelete="CASCADE"), nullable=False),
        sa.Column("child_id", sa.Integer(), sa.ForeignKey("child.id", ondelete="CASCADE"), nullable=False),
        sa.Column("added_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("added_by_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=True),
        sa.UniqueConstraint("child_id"),
    )
    op.create_index("ix_family_child_family_id", "family_child", ["family_id"])
    op.create_table(
        "family_adult",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("family_id", sa.Integer(), sa.ForeignKey("family.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_family_adult_family_id", "family_adult", ["family_id"])
    op.create_table(
        "family_adult_child",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("adult_id", sa.Integer(), sa.ForeignKey("family_adult.id", ondelete="CASCADE"), nullable=False),
        sa.Column("child_id", sa.Integer(), sa.ForeignKey("child.id", ondelete="CASCADE"), nullable=False),
        sa.Column("relationship_to_child", sa.String(length=100), nullable=False),
        sa.Column("parental_responsibility", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("adult_id", "child_id", name="uq_family_adult_child"),
    )
    op.create_index("ix_family_adult_child_child_id", "family_adult_child", ["child_id"])


def downgrade() -> None:
    op.drop_index("ix_family_adult_child_child_id", table_name="family_adult_child")
    op.drop_table("family_adult_child")
    op.drop_index("ix_family_adult_family_id", table_name="family_adult")
    op.drop_table("family_adult")
    op.drop_index("ix_family_child_family_id", table_name="family_child")
    op.drop_table("family_child")
    op.drop_table("family")
