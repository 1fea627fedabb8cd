"""keyed audit links: each audit row says how it is linked to the one before

Rows sealed before this revision keep their plain SHA-256 links ('sha256'); rows sealed after it
are linked by an HMAC-SHA-256 keyed with ECAF_AUDIT_KEY ('hmac-sha256'), which the database never
holds. `ecaf audit verify` refuses an unkeyed row after a keyed one, and the first keyed row's
HMAC covers the last unkeyed row's hash, so the old rows cannot be rewritten unnoticed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

from app.audit import install_append_only, remove_append_only

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

audit_event = sa.table('audit_event', sa.column('seq', sa.BigInteger()), sa.column('link_kind', sa.String()))


def upgrade() -> None:
    op.add_column('audit_event', sa.Column('link_kind', sa.String(length=16), nullable=True))
    connection = op.get_bind()
    # The append-only triggers refuse every UPDATE: lifted for this one statement, as the owner.
    remove_append_only(connection)
    connection.execute(sa.update(audit_event).where(audit_event.c.seq.is_not(None)).values(link_kind='sha256'))
    install_append_only(connection)


def downgrade() -> None:
    connection = op.get_bind()
    keyed = connection.execute(sa.select(sa.func.count()).select_from(audit_event)
                               .where(audit_event.c.link_kind == 'hmac-sha256')).scalar()
    if keyed:
        # Without the column these rows could only be checked as plain SHA-256, and would all fail.
        raise RuntimeError(f"{keyed} audit rows have keyed links: downgrading below 0010 would make them "
                           "unverifiable")
    op.drop_column('audit_event', 'link_kind')
