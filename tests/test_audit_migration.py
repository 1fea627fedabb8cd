"""Migration 0010 on a trail written before keyed links: its rows stay checkable as plain SHA-256,
new rows are keyed, and the old rows are no place to hide a change."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from app import audit
from app.clock import now
from app.db import Database, normalise_url
from app.migrate import upgrade
from app.models import AuditEvent
from app.models.audit import GENESIS, chain_hash
from tests.conftest import BASE_POSTGRES_URL, TEST_AUDIT_KEY, unavailable


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    """A database of its own, migrated only as far as 0009."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'before-keyed-links.db'}"
        upgrade(url, "0009")
        yield url
        return
    name = f"h_audit_mig_{uuid.uuid4().hex[:10]}"
    server = create_engine(normalise_url(BASE_POSTGRES_URL), isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    try:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        server.dispose()
        unavailable(f"PostgreSQL is not reachable at {BASE_POSTGRES_URL}: {type(exc).__name__}")
    url = f"{BASE_POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    try:
        upgrade(url, "0009")
        yield url
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def _old_rows(url: str, count: int) -> None:
    """Rows as eCAF sealed them before 0010: plain SHA-256 links."""
    engine = create_engine(normalise_url(url))
    prev, at = GENESIS, now() - timedelta(days=1)
    with engine.begin() as conn:
        for seq in range(1, count + 1):
            row_hash = chain_hash(seq, at, None, "old_row", None, {"n": seq}, prev)
            conn.execute(text("INSERT INTO audit_event (at, action, detail, seq, prev_hash, row_hash) "
                              "VALUES (:at, 'old_row', :detail, :seq, :prev, :hash)"),
                         {"at": at.replace(tzinfo=None) if url.startswith("sqlite") else at,
                          "detail": f'{{"n": {seq}}}', "seq": seq, "prev": prev, "hash": row_hash})
            prev = row_hash
    engine.dispose()


def test_rows_sealed_before_keyed_links_stay_checkable_and_cannot_hide_a_change(scratch_url):
    _old_rows(scratch_url, 3)
    upgrade(scratch_url)
    db = Database(scratch_url, audit_key=TEST_AUDIT_KEY.encode())
    try:
        for i in range(2):
            with db.session() as session:
                audit.record(session, "new_row", i=i)
        with db.engine.connect() as conn:
            kinds = conn.execute(text("SELECT seq, link_kind FROM audit_event ORDER BY seq")).all()
        assert [tuple(k) for k in kinds] == [(1, "sha256"), (2, "sha256"), (3, "sha256"),
                                            (4, "hmac-sha256"), (5, "hmac-sha256")]
        report = audit.verify_chain(db)
        assert report.intact and report.unkeyed_until == 3
        assert "seq 1 to 3 are linked by plain SHA-256" in report.lines()[-1]

        # An old row changed and the old links recomputed, as anyone can: the first keyed row says no.
        with db.engine.begin() as conn:
            audit.remove_append_only(conn)
            rows = conn.execute(select(AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action,
                                       AuditEvent.episode_id).where(AuditEvent.seq <= 3).order_by(AuditEvent.seq)).all()
            prev = GENESIS
            for row in rows:
                detail = {"n": "changed"} if row.seq == 2 else {"n": row.seq}
                new_hash = chain_hash(row.seq, row.at, row.actor_id, row.action, row.episode_id, detail, prev)
                conn.execute(text("UPDATE audit_event SET detail = :d, prev_hash = :p, row_hash = :h WHERE seq = :s"),
                             {"d": '{"n": "changed"}' if row.seq == 2 else f'{{"n": {row.seq}}}', "p": prev,
                              "h": new_hash, "s": row.seq})
                prev = new_hash
            audit.install_append_only(conn)
        report = audit.verify_chain(db)
        assert report.broken_seq == 4 and report.problem.startswith("link to previous broken")
    finally:
        db.dispose()
