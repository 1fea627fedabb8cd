"""The least-privilege PostgreSQL role of docs/deploy/database-roles.md: the web and worker
processes, connected as it, run episodes and add to the audit trail, but cannot change, remove or
empty audit rows, nor change the schema."""
from __future__ import annotations

import re
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app import audit
from app.config import PROJECT_ROOT
from app.db import normalise_url
from app.jobs.runtime import Runtime
from app.jobs.sweep import purge_sessions, sweep
from tests.journeys import prepare
from tests.test_audit_trail import _chain, _write

GRANTS = PROJECT_ROOT / "docs" / "deploy" / "database-roles.sql"


@pytest.fixture
def app_role(runtime):
    """A role made by the documented grants, with a name of its own; dropped afterwards."""
    if not runtime.db.is_postgresql:
        pytest.skip("database roles are PostgreSQL's")
    name = f"ecaf_app_{uuid.uuid4().hex[:12]}"
    grants = re.sub(r"\becaf_app\b", name, GRANTS.read_text())
    owner = create_engine(runtime.db.url, isolation_level="AUTOCOMMIT")
    try:
        with owner.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')
            # The documented step 2, as the owner after `ecaf db upgrade` (sent as psql would: no parameters).
            conn.connection.driver_connection.execute(grants)
        url = make_url(normalise_url(runtime.config.database_url)).set(username=name, password=None)
        yield name, url.render_as_string(hide_password=False)
    finally:
        with owner.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'")
            conn.exec_driver_sql(f'DROP OWNED BY "{name}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        owner.dispose()


def _refused(engine, sql: str, expected: str) -> None:
    with pytest.raises(DBAPIError, match=expected), engine.begin() as conn:
        conn.exec_driver_sql(sql)


def test_the_app_role_adds_to_the_audit_trail_but_cannot_change_it_or_the_schema(runtime, people, app_role):
    name, url = app_role
    _write(runtime, 2)  # rows the owner's processes wrote before
    as_app = Runtime.build(replace(runtime.config, database_url=url))
    try:
        with as_app.db.engine.connect() as conn:
            assert conn.scalar(text("SELECT current_user")) == name
        # The work of the web app and the worker: episodes stepped, rows updated and deleted, audit rows sealed.
        episode_id = prepare(as_app, people)
        sweep(as_app)
        purge_sessions(as_app)
        _write(as_app, 2)
        rows = _chain(as_app)
        assert len(rows) > 4 and any(r.episode_id == episode_id for r in rows)
        assert audit.verify_chain(as_app.db).intact

        engine = as_app.db.engine
        for sql in ("UPDATE audit_event SET action = 'nothing_to_see' WHERE seq = 1",
                    "DELETE FROM audit_event WHERE seq = 1",
                    "TRUNCATE audit_event"):
            _refused(engine, sql, "permission denied for table audit_event")
        for sql in ("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_delete",
                    "DROP TRIGGER audit_event_no_delete ON audit_event",
                    "ALTER TABLE audit_event ADD COLUMN note text",
                    "ALTER TABLE episode ADD COLUMN note text",
                    "DROP TABLE web_session"):
            _refused(engine, sql, "must be owner")
        _refused(engine, "CREATE TABLE shadow_audit (id int)", "permission denied for schema public")
        _refused(engine, "TRUNCATE web_session", "permission denied for table web_session")
        _refused(engine, "SELECT * FROM alembic_version", "permission denied for table alembic_version")
        assert audit.verify_chain(as_app.db).intact and len(_chain(as_app)) == len(rows)
    finally:
        as_app.db.dispose()
