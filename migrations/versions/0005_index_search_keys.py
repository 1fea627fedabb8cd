"""index search keys: date of birth and postcode indexed for the national index search

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_index_entry_date_of_birth", "index_entry", ["date_of_birth"])
    if op.get_bind().dialect.name == "postgresql":
        # The search matches postcode districts by prefix: pattern ops let LIKE 'W9 %' use the index.
        op.execute("CREATE INDEX ix_index_entry_postcode ON index_entry (postcode varchar_pattern_ops)")
    else:
        op.create_index("ix_index_entry_postcode", "index_entry", ["postcode"])


def downgrade() -> None:
    op.drop_index("ix_index_entry_postcode", table_name="index_entry")
    op.drop_index("ix_index_entry_date_of_birth", table_name="index_entry")
