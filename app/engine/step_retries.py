"""Transient database errors during a step, and running the step again after them.

A lock or statement timeout, a deadlock, a serialization failure or a lost connection says
nothing about the episode: the step's whole transaction is rolled back and the step runs again
from a fresh load, after a short pause. Only a fault of the handler itself is an episode error.

Every step is also measured and logged here: one `ecaf.step` line per step, with ids and kinds
only (never a name or a word of a form).
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterator, TypeVar

from sqlalchemy import exc as sa_exc

from app import metrics, request_ids

from .errors import EngineError, StepInterrupted

log = logging.getLogger(__name__)
step_log = logging.getLogger("ecaf.step")
T = TypeVar("T")

# Pauses before each new try: the first few catch a lock released a moment later, the last
# outlasts a database restart's first seconds.
PAUSES = (0.05, 0.2, 1.0, 3.0)

# PostgreSQL SQLSTATEs that say "not now" rather than "never".
_SQLSTATES = {
    "55P03": "lock_timeout",       # lock_not_available (lock_timeout, NOWAIT)
    "57014": "statement_timeout",  # query_canceled (statement_timeout, pg_cancel_backend)
    "40P01": "deadlock",
    "40001": "serialization",
    "57P01": "connection",         # admin_shutdown: pg_terminate_backend, a fast shutdown
    "57P02": "connection",         # crash_shutdown
    "57P03": "connection",         # cannot_connect_now: the server is starting
    "53300": "connection",         # too_many_connections
}
# Kinds after which the connection (and the database) may be gone, not just one row busy.
CONNECTION_KINDS = frozenset({"connection"})


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything behind it: SpiffWorkflow wraps a handler's exception, SQLAlchemy
    wraps the driver's, and a failed rollback hides the error that caused it."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend((current.__cause__, current.__context__, getattr(current, "orig", None)))


def _kind_of_one(error: BaseException) -> str | None:
    if isinstance(error, StepInterrupted):
        return error.kind
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return "connection"
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return "connection"  # a dropped connection, or no free one in the pool in time
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _SQLSTATES:
            return _SQLSTATES[sqlstate]
        if sqlstate.startswith("08"):
            return "connection"
        return None
    module = type(error).__module__ or ""
    if module.startswith("psycopg") and type(error).__name__ == "OperationalError":
        return "connection"  # no SQLSTATE: the server closed the connection, or never answered
    if module.startswith("sqlite3") and "database is locked" in str(error):
        return "locked"
    return None


def transient_kind(error: BaseException) -> str | None:
    """Why `error` is worth trying again (lock_timeout, statement_timeout, deadlock, serialization,
    connection, locked), or None when it is a real fault."""
    for link in _chain(error):
        kind = _kind_of_one(link)
        if kind is not None:
            return kind
    return None


def is_connection_error(error: BaseException) -> bool:
    return transient_kind(error) in CONNECTION_KINDS


def with_retries(kind: str, action: Callable[[], T], *, episode_id: int | None = None,
                 pauses: tuple[float, ...] = PAUSES, sleep: Callable[[float], None] = time.sleep,
                 not_here: frozenset[str] = frozenset()) -> T:
    """Run `action` (one whole transaction, or a savepoint), again after each transient database error,
    up to len(pauses) more times; then raise StepInterrupted. Any other error, and a transient one of
    a kind in `not_here` (a savepoint cannot outlive its connection), is raised as it is."""
    tries = len(pauses) + 1
    for attempt in range(1, tries + 1):
        try:
            return action()
        except Exception as error:
            reason = transient_kind(error)
            if reason is None or reason in not_here:
                raise
            if attempt == tries:
                raise StepInterrupted(
                    "the database could not finish this just now and nothing was changed: try again in a moment",
                    kind=reason) from error
            metrics.step_retried(kind)
            log.warning("%s step of episode %s rolled back after a transient database error (%s: %s); "
                        "try %d of %d in %.2fs", kind, episode_id, reason, type(error).__name__, attempt + 1,
                        tries, pauses[attempt - 1])
            sleep(pauses[attempt - 1])
    raise AssertionError("unreachable")


def observed(kind: str, action: Callable[[], T], *, episode_id: int | None = None,
             pauses: tuple[float, ...] = PAUSES) -> T:
    """Run a step with retries, measure it and log one line: outcome ok, error (the episode is in
    error), refused (the engine said no), transient (tries ran out) or failed (anything else)."""
    started = time.monotonic()
    outcome, result = "failed", None
    try:
        result = with_retries(kind, action, episode_id=episode_id, pauses=pauses)
        outcome = "error" if getattr(result, "status", None) == "error" else "ok"
        return result
    except StepInterrupted:
        outcome = "transient"
        raise
    except EngineError:
        outcome = "refused"
        raise
    finally:
        seconds = time.monotonic() - started
        if result is not None or outcome != "ok":
            found = getattr(result, "episode_id", None) or episode_id
            metrics.step_observed(kind, seconds, outcome)
            step_log.info("step", extra={"event": {
                "kind": kind, "episode_id": found, "outcome": outcome, "seconds": round(seconds, 4),
                "request_id": request_ids.current()}})
