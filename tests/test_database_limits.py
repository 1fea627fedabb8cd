"""The web app's and workers' PostgreSQL connections wait a bounded time for a lock or a statement,
so a long transaction elsewhere makes a step fail and be retried (app/engine/step_retries.py) rather
than hold a person's request or a worker's timer thread for ever."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.engine.step_retries import transient_kind
from app.jobs.runtime import Runtime

from .conftest import POSTGRES_URL, unavailable


@pytest.fixture
def postgres_runtime(config):
    runtime = Runtime.build(replace(config, database_url=POSTGRES_URL, db_lock_timeout_seconds=0.3,
                                    db_statement_timeout_seconds=0.5))
    try:
        with runtime.db.session() as session:
            session.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable: {type(exc).__name__}")
    yield runtime
    runtime.db.dispose()


def test_a_row_held_elsewhere_fails_the_wait_as_a_lock_timeout_the_step_retries(postgres_runtime):
    db = postgres_runtime.db
    with db.engine.connect() as holder:
        holder.execute(text("CREATE TABLE IF NOT EXISTS limits_probe (id int PRIMARY KEY)"))
        holder.execute(text("INSERT INTO limits_probe VALUES (1) ON CONFLICT DO NOTHING"))
        holder.commit()
        holder.execute(text("SELECT id FROM limits_probe WHERE id = 1 FOR UPDATE"))  # held until rollback
        with pytest.raises(OperationalError) as waited:
            with db.session() as session:
                session.execute(text("SELECT id FROM limits_probe WHERE id = 1 FOR UPDATE"))
        holder.rollback()
        holder.execute(text("DROP TABLE limits_probe"))
        holder.commit()
    assert transient_kind(waited.value) == "lock_timeout"


def test_a_statement_that_runs_too_long_is_cancelled_as_transient(postgres_runtime):
    with pytest.raises(OperationalError) as ran:
        with postgres_runtime.db.session() as session:
            session.execute(text("SELECT pg_sleep(5)"))
    assert transient_kind(ran.value) == "statement_timeout"


def test_the_limits_are_the_settings_and_zero_means_none(config):
    limited = Runtime.build(replace(config, database_url=POSTGRES_URL, db_lock_timeout_seconds=10,
                                    db_statement_timeout_seconds=0)).db
    try:
        with limited.session() as session:
            assert session.execute(text("SHOW lock_timeout")).scalar() == "10s"
            assert session.execute(text("SHOW statement_timeout")).scalar() == "0"
    except OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable: {type(exc).__name__}")
    finally:
        limited.dispose()


def test_a_pooled_connection_lost_while_idle_is_replaced_without_an_error(postgres_runtime, monkeypatch):
    """No ping on every checkout; a connection idle long enough to have been lost is asked first, and a
    dead one is swapped for a new connection before anyone uses it."""
    import app.db

    db = postgres_runtime.db
    with db.session() as session:
        first = session.execute(text("SELECT pg_backend_pid()")).scalar()
    with db.session() as session:  # used again at once: the same connection, no ping
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() == first
    other = Runtime.build(replace(postgres_runtime.config)).db  # its own pool: never the connection it ends
    try:
        with other.session() as session:
            assert session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    finally:
        other.dispose()
    monkeypatch.setattr(app.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with db.session() as session:
        replaced = session.execute(text("SELECT pg_backend_pid()")).scalar()
    assert replaced != first
