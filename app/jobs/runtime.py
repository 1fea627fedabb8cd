"""What a background job needs: settings, database and engine, built once per process."""
from __future__ import annotations

from dataclasses import dataclass

from app.config import Config
from app.db import Database
from app.engine.runner import Dispatcher, Engine


@dataclass
class Runtime:
    config: Config
    db: Database
    engine: Engine

    @classmethod
    def build(cls, config: Config, dispatcher: Dispatcher | None = None) -> "Runtime":
        db = Database(config.database_url, audit_key=config.audit_signing_key(),
                      lock_timeout_seconds=config.db_lock_timeout_seconds,
                      statement_timeout_seconds=config.db_statement_timeout_seconds)
        return cls(config, db, Engine(db, config, dispatcher))

    @classmethod
    def with_jobs(cls, config: Config) -> "Runtime":
        """A runtime whose steps hand their follow-up work to rq, or to an in-process runner."""
        from .dispatch import dispatcher_for

        runtime = cls.build(config)
        runtime.engine.dispatcher = dispatcher_for(config, runtime)
        return runtime


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    """The process's runtime; an rq worker builds it from the environment on first use."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.with_jobs(Config.from_env())
    return _runtime
