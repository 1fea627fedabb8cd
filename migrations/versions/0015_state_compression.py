"""state compression: a workflow state is compressed with LZ4 on PostgreSQL

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 00:15:00.000000

Every step writes its episode's state (about 30 KB of JSON, stored compressed out of line).
PostgreSQL's default compression, pglz, took half of the server's CPU for that write; LZ4 takes a
tenth as long for about the same size. Only values written from now on are compressed this way;
older ones stay readable as they are. A server built without LZ4 keeps pglz. SQLite: nothing to do.
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def _compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        DO $$
        BEGIN
            ALTER TABLE episode ALTER COLUMN state SET COMPRESSION {method};
        EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
            RAISE NOTICE 'this server cannot compress with {method}: the state keeps its compression';
        END $$""")


def upgrade() -> None:
    _compression("lz4")


def downgrade() -> None:
    _compression("pglz")
