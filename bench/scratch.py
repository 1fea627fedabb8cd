"""Scratch PostgreSQL databases for the benchmarks: each run makes its own and drops it afterwards.

    from bench.scratch import SERVER, scratch_database

    parser.add_argument("--postgres", default=SERVER, help="the PostgreSQL server ...; empty: SQLite only")
    ...
    with scratch_database("timers", args.postgres) as url:
        ...  # migrate, fill and measure the database at `url` (a postgresql+psycopg:// URL)

`scratch_database(script, server)` creates `ecaf_bench_<script>_<pid>_<random>` on the server that
`server` names (a URL; a database named in it is only a way in and is never touched), yields the new
database's URL, and drops the database when the block ends: normally, on an exception, on Ctrl-C and
on SIGTERM (sessions still connected to it are ended first, so an engine left open cannot stop the
drop). It raises OperationalError when the server cannot be reached: a benchmark that can do without
PostgreSQL catches it and says its figures are skipped. A benchmark never drops, or empties, a
database it did not create; so two benchmarks, or a benchmark and the tests, can run side by side.

`reset_postgres(url)` is the older way (create if missing, then drop and rebuild the public schema of
the database `url` names): it stays only until every benchmark has moved to scratch_database.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from app.db import normalise_url

SERVER = "postgresql://postgres@127.0.0.1:5432"
SCRATCH_POSTGRES = f"{SERVER}/ecaf_bench"  # reset_postgres's old default: switch to scratch_database
_PREFIX = "ecaf_bench_"


def _maintenance(server: str) -> URL:
    """The server's `postgres` database, whatever database the given URL names."""
    return make_url(normalise_url(server)).set(database="postgres")


def _admin(server: str):
    return create_engine(_maintenance(server), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


def scratch_name(script: str) -> str:
    """A database name no other run uses: the script, this process and a random part (at most 63 bytes)."""
    word = re.sub(r"[^a-z0-9_]", "_", script.lower().removesuffix(".py"))[:30]
    return f"{_PREFIX}{word}_{os.getpid()}_{secrets.token_hex(3)}"


def drop_database(server: str, name: str) -> None:
    """End every session on `name`, then drop it (only ever called for a database made here)."""
    if not name.startswith(_PREFIX):
        raise ValueError(f"{name} is not a benchmark's scratch database")
    engine = _admin(server)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


class _Terminated(SystemExit):
    pass


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a harness's timeout, a service manager) unwinds like Ctrl-C, so `finally` blocks run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum, _frame):
        raise _Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def scratch_database(script: str, server: str = SERVER) -> Iterator[str]:
    """A new, empty database on `server` for this run of `script`; dropped when the block ends."""
    name = scratch_name(script)
    engine = _admin(server)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    try:
        with _sigterm_unwinds():
            yield _maintenance(server).set(database=name).render_as_string(hide_password=False)
    finally:
        drop_database(server, name)


def reset_postgres(url: str) -> None:
    """Create the database if the server lacks it, then drop and rebuild its public schema (empty).
    Raises OperationalError when the server cannot be reached. Older API: use scratch_database."""
    target = make_url(normalise_url(url))
    engine = create_engine(target, connect_args={"connect_timeout": 3})
    try:
        engine.connect().close()
    except OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": 3})
        try:
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        finally:
            server.dispose()
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
