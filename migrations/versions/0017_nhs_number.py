"""the NHS number: a child's consistent identifier, or the reason it is missing

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 04:30:00.000000

The Children Act 2004 s.16LC (inserted by the Children's Wellbeing and Schools Act 2026) asks for the
NHS number on information processed about a child, unless including it would be detrimental or finding
it would cause unreasonable delay. A child is recorded once per NHS number: the unique constraint is
what refuses two practitioners recording the same child at the same moment. The index entry copies the
number as it copies the other search keys; a search request keeps it as asked.
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _restore_expression_indexes() -> None:
    """SQLite adds a constraint by rebuilding the table, copying the indexes it can reflect: those on
    expressions (migration 0014) it cannot, so they are made again."""
    if op.get_bind().dialect.name == "sqlite":
        for name, column in (("ix_child_family_name_folded", "family_name"),
                             ("ix_child_given_names_folded", "given_names")):
            op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON child (lower(trim({column})))")


def upgrade() -> None:
    with op.batch_alter_table("child") as batch:
        batch.add_column(sa.Column("nhs_number", sa.String(10), nullable=True))
        batch.add_column(sa.Column("nhs_number_missing", sa.String(20), nullable=True))
        batch.create_unique_constraint("uq_child_nhs_number", ["nhs_number"])
        batch.create_check_constraint("ck_child_nhs_number_or_reason",
                                      "nhs_number IS NULL OR nhs_number_missing IS NULL")
    _restore_expression_indexes()
    with op.batch_alter_table("index_entry") as batch:
        batch.add_column(sa.Column("nhs_number", sa.String(10), nullable=True))
        batch.create_index("ix_index_entry_nhs_number", ["nhs_number"])
    with op.batch_alter_table("search_request_child") as batch:
        batch.add_column(sa.Column("nhs_number", sa.String(10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_request_child") as batch:
        batch.drop_column("nhs_number")
    with op.batch_alter_table("index_entry") as batch:
        batch.drop_index("ix_index_entry_nhs_number")
        batch.drop_column("nhs_number")
    with op.batch_alter_table("child") as batch:
        batch.drop_constraint("ck_child_nhs_number_or_reason", type_="check")
        batch.drop_constraint("uq_child_nhs_number", type_="unique")
        batch.drop_column("nhs_number_missing")
        batch.drop_column("nhs_number")
    _restore_expression_indexes()
