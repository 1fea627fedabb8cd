"""The scratch PostgreSQL database the benchmarks fill: never the test databases, whose schema they would drop."""
from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.db import normalise_url

SCRATCH_POSTGRES = "postgresql://postgres@127.0.0.1:5432/ecaf_bench"


def reset_postgres(url: str) -> None:
    """Create the database if the server lacks it, then drop and rebuild its public schema (empty).
    Raises OperationalError when the server cannot be reached."""
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
