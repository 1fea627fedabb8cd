"""Database engine and sessions (plain SQLAlchemy 2.x, no Flask extension).

SQLite is the embedded default; PostgreSQL (psycopg 3) is the production database.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


CONNECT_TIMEOUT_SECONDS = 5
# A connection whose far end has gone (a partition, a host that died) is found out in about a minute
# instead of the operating system's fifteen, so no thread waits on it for ever.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
              "tcp_user_timeout": 60_000}


def _session_limits(lock_timeout: float | None, statement_timeout: float | None) -> dict:
    """PostgreSQL settings for every connection of the web app and workers: a step waits at most
    `lock_timeout` for a row another transaction holds and runs a statement at most `statement_timeout`,
    then fails with an error the step retries (app/engine/step_retries.py) instead of waiting for ever."""
    options = [f"-c {name}={int(seconds * 1000)}" for name, seconds in
               (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout)) if seconds]
    return {"options": " ".join(options)} if options else {}

POOL_RECYCLE_SECONDS = 1800
# A pooled connection unused for longer than this is pinged before it is handed out again: after a
# database restart or a dropped link, the idle ones are the ones that have gone.
PING_AFTER_IDLE_SECONDS = 1.0


def _note_checkin(_dbapi_connection, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1").close()
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure means this connection is gone
        # The pool discards it and hands out a new connection instead.
        raise DisconnectionError(f"a pooled connection was lost while idle ({type(exc).__name__})") from exc


# Session.info key under which sessions carry the audit key that seals their audit rows.
AUDIT_KEY_INFO = "ecaf_audit_key"


class Database:
    """One engine and session factory per process (web app, worker or CLI).

    `audit_key` seals the audit rows its sessions write (`Config.audit_signing_key`); without it
    a session can read the trail but not add to it.
    """

    def __init__(self, url: str, audit_key: bytes | None = None, *, lock_timeout_seconds: float | None = None,
                 statement_timeout_seconds: float | None = None):
        self.url = normalise_url(url)
        self.audit_key = audit_key
        # A failed statement's values (names, dates of birth) never reach an error message or a log line.
        kwargs: dict = {"future": True, "hide_parameters": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            # No ping on every checkout (a round trip each time a request or step takes a connection): a
            # connection is asked whether it still lives only when it has been idle a while (_ping_if_idle),
            # and none is kept longer than the recycle time.
            kwargs["pool_recycle"] = POOL_RECYCLE_SECONDS
            # A database host that stops answering fails a connection in seconds, not the system's minutes:
            # probes, steps and loops then report it and try again instead of hanging.
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **KEEPALIVES,
                                      **_session_limits(lock_timeout_seconds, statement_timeout_seconds)}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if not self.is_sqlite:
            event.listen(self.engine, "checkin", _note_checkin)
            event.listen(self.engine, "checkout", _ping_if_idle)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _tune_sqlite)
            # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that a
            # read-then-write step holds its snapshot (and SAVEPOINTs work).
            event.listen(self.engine, "connect", lambda conn, _r: setattr(conn, "isolation_level", None))
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False,
                                     info={AUDIT_KEY_INFO: audit_key} if audit_key else None)
        # Called before every `session()`: the web app ends a request's open transaction there, so no
        # two transactions of one request overlap (on SQLite the second would wait for the first's
        # write lock until it timed out: app/web/request_db.py).
        self.before_session: Callable[[], None] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def is_postgresql(self) -> bool:
        return self.url.startswith("postgresql")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        if self.before_session is not None:
            self.before_session()
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
