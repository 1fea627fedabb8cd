"""transfers by client systems: a transfer request asked or decided by a client system

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 10:00:00.000000

A client system (issue 21, /api/v1/transfers) asks and decides for its authority, with no person
behind the call: the request names the client instead of a user, and one of the two must be set.
"""
from alembic import op
import sqlalchemy as sa

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transfer_request") as batch:
        batch.add_column(sa.Column("requested_by_client_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("decided_by_client_id", sa.Integer(), nullable=True))
        batch.alter_column("requested_by_id", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key(op.f("fk_transfer_request_requested_by_client_id_api_client"), "api_client",
                                 ["requested_by_client_id"], ["id"])
        batch.create_foreign_key(op.f("fk_transfer_request_decided_by_client_id_api_client"), "api_client",
                                 ["decided_by_client_id"], ["id"])
        batch.create_check_constraint(op.f("ck_transfer_request_one_asker"),
                                      "requested_by_id IS NOT NULL OR requested_by_client_id IS NOT NULL")


def downgrade() -> None:
    # A request asked by a client names no person, so the older shape cannot hold it: refuse rather
    # than delete a request (or a live release) someone is waiting on.
    asked = op.get_bind().execute(sa.text("SELECT count(*) FROM transfer_request WHERE requested_by_id IS NULL"))
    if asked.scalar():
        raise RuntimeError("Transfer requests asked by client systems exist: close them before downgrading")
    op.execute("UPDATE transfer_request SET decided_by_client_id = NULL")
    with op.batch_alter_table("transfer_request") as batch:
        batch.drop_constraint(op.f("ck_transfer_request_one_asker"), type_="check")
        batch.drop_constraint(op.f("fk_transfer_request_decided_by_client_id_api_client"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_transfer_request_requested_by_client_id_api_client"), type_="foreignkey")
        batch.alter_column("requested_by_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("decided_by_client_id")
        batch.drop_column("requested_by_client_id")
