"""audit chain: seal existing audit rows into the hash chain, then make the table append-only

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

from app.audit import install_append_only, remove_append_only
from app.models.audit import GENESIS, chain_hash
from app.models.base import JSONType, UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BATCH = 1000

# The table as this revision knows it, so later model changes cannot change the backfill.
audit_event = sa.table(
    'audit_event',
    sa.column('id', sa.Integer()), sa.column('at', UTCDateTime()), sa.column('actor_id', sa.Integer()),
    sa.column('action', sa.String()), sa.column('episode_id', sa.Integer()), sa.column('detail', JSONType),
    sa.column('seq', sa.BigInteger()), sa.column('prev_hash', sa.String()), sa.column('row_hash', sa.String()),
)


def upgrade() -> None:
    connection = op.get_bind()
    backfill_chain(connection)
    install_append_only(connection)


def downgrade() -> None:
    remove_append_only(op.get_bind())


def backfill_chain(connection) -> None:
    """Seal the rows written before the chain existed, in id order, after any already sealed.

    Sealed rows are left as they are, so a downgrade and upgrade cannot launder a changed row.
    """
    last = connection.execute(sa.select(audit_event.c.seq, audit_event.c.row_hash)
                              .where(audit_event.c.seq.is_not(None))
                              .order_by(audit_event.c.seq.desc()).limit(1)).first()
    seq, prev_hash = (last.seq, last.row_hash) if last else (0, GENESIS)
    last_id = 0
    while True:
        rows = connection.execute(sa.select(audit_event)
                                  .where(audit_event.c.seq.is_(None), audit_event.c.id > last_id)
                                  .order_by(audit_event.c.id).limit(BATCH)).all()
        if not rows:
            return
        sealed = []
        for row in rows:
            seq += 1
            row_hash = chain_hash(seq, row.at, row.actor_id, row.action, row.episode_id, row.detail, prev_hash)
            sealed.append({"row_id": row.id, "new_seq": seq, "new_prev_hash": prev_hash, "new_row_hash": row_hash})
            prev_hash = row_hash
        connection.execute(sa.update(audit_event).where(audit_event.c.id == sa.bindparam("row_id"))
                           .values(seq=sa.bindparam("new_seq"), prev_hash=sa.bindparam("new_prev_hash"),
                                   row_hash=sa.bindparam("new_row_hash")), sealed)
        last_id = rows[-1].id
