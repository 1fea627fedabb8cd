"""Liveness and readiness, for load balancers, orchestrators and supervisors.

- `/healthz`: this process answers. It touches nothing else, so a database outage never gets
  healthy web processes restarted (that would only add to the outage).
- `/readyz`: this process can do its work: the database answers and is at the code's latest
  migration; with REDIS_URL, Redis answers and at least one `ecaf worker` beat in the last minute.
  503 otherwise, naming each failing check with a short reason.

Both are public, set no cookie, write no audit row and say nothing of hosts, URLs, keys, accounts
or children: anyone can ask. The readiness answer is kept for a moment so that a flood of probes
costs one database query and one Redis scan a second, not one each.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import Blueprint, current_app, jsonify

from app.services import system_status
from app.web import runtime
from app.web.access import public

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# How long one readiness answer is reused (per process).
READINESS_TTL_SECONDS = 1.0
# A probe must answer within a probe's patience: slow queries and Redis calls give up after this.
CHECK_TIMEOUT_SECONDS = 2.0
UPGRADE = "run `ecaf db upgrade`"


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str | None = None
    detail: dict | None = None

    def as_json(self) -> dict:
        return {"status": "ok" if self.ok else "failing",
                **({"reason": self.reason} if self.reason else {}), **(self.detail or {})}


@bp.get("/healthz")
@public
def liveness():
    return {"status": "ok"}


@bp.get("/readyz")
@public
def readiness():
    checks = _cached_checks()
    ready = all(check.ok for check in checks.values())
    body = {"status": "ready" if ready else "not ready",
            "checks": {name: check.as_json() for name, check in checks.items()}}
    return jsonify(body), 200 if ready else 503


def _cached_checks() -> dict[str, Check]:
    state = current_app.extensions.setdefault("ecaf_readiness", {"lock": threading.Lock(), "at": None,
                                                                 "checks": None})

    def fresh() -> bool:
        return state["at"] is not None and time.monotonic() - state["at"] < READINESS_TTL_SECONDS

    if fresh():
        return state["checks"]
    # While one probe finds out (a stalled database can take a while), the others answer what it found
    # last instead of each holding a web thread on the same question.
    if not state["lock"].acquire(blocking=state["checks"] is None):
        return state["checks"]
    try:
        if not fresh():
            state["checks"] = readiness_checks(runtime())
            state["at"] = time.monotonic()
        return state["checks"]
    finally:
        state["lock"].release()


def readiness_checks(found_runtime) -> dict[str, Check]:
    """Each named check of this process's readiness. Never raises: a failure is a failing check, and
    what went wrong in detail goes to the log (operators only), never into the answer."""
    checks = {"database": Check(False, "does not answer")}
    try:
        current = _migration_revisions(found_runtime.db)
        checks["database"] = Check(True)
        checks["migrations"] = _migrations(current)
    except Exception:
        log.warning("readiness: the database does not answer", exc_info=True)
        checks["migrations"] = Check(False, "not checked: the database does not answer")
    if not found_runtime.config.redis_url:
        checks["workers"] = Check(True, "no Redis: background jobs run in the web process")
        return checks
    try:
        # The System page's client: one per URL and process, with short timeouts, so a stalled Redis
        # fails the check instead of holding a web thread.
        redis = system_status.redis_client(found_runtime.config.redis_url)
        redis.ping()
        checks["redis"] = Check(True)
    except Exception:
        log.warning("readiness: Redis does not answer", exc_info=True)
        checks["redis"] = Check(False, "does not answer")
        checks["workers"] = Check(False, "not checked: Redis does not answer")
        return checks
    checks["workers"] = _workers(redis)
    return checks


def _migration_revisions(db) -> set[str] | None:
    """The revisions the database is at (None: no schema), through a raw pooled connection: a plain
    read, outside the app's transactions (which take SQLite's write lock at their start)."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        if db.is_postgresql:  # local to this transaction, which the pool rolls back on return
            cursor.execute(f"SET LOCAL statement_timeout = {int(CHECK_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("SELECT 1")
        cursor.fetchall()
        if db.is_postgresql:
            cursor.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
        else:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT version_num FROM alembic_version")
        return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def _migrations(current: set[str] | None) -> Check:
    heads, known = _script_revisions()
    if not current:
        return Check(False, f"the database has no schema: {UPGRADE}")
    if current == heads:
        return Check(True)
    if current - known:
        return Check(False, "the database is at a migration this code does not know: a newer release migrated it")
    return Check(False, f"the database is behind this code's migrations: {UPGRADE}")


def warm() -> None:
    """Read the migration scripts now (a web process calls it before taking requests), so that the
    first probe answers as fast as the next."""
    _script_revisions()


@lru_cache(maxsize=1)
def _script_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """The code's head revisions and every revision it knows (read once: the files do not change)."""
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin, every process
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(scripts.get_heads()), frozenset(script.revision for script in scripts.walk_revisions())


def _workers(redis) -> Check:
    from app.jobs.heartbeat import LIVE_WITHIN_SECONDS, live_workers

    try:
        seen = live_workers(redis, stuck_too=True)
    except Exception:
        log.warning("readiness: cannot read worker heartbeats", exc_info=True)
        return Check(False, "cannot read the workers' heartbeats")
    live = sum(1 for record in seen if not record.get("stuck"))
    if not live and seen:
        return Check(False, f"{len(seen)} worker(s) report but their deadline loop gets nowhere: deadlines are not "
                            "being acted on (restart `ecaf worker`)", {"live": 0, "stuck": len(seen)})
    if not live:
        return Check(False, f"no worker has reported in the last {LIVE_WITHIN_SECONDS} seconds: deadlines and "
                            "messages are not being processed (start `ecaf worker`)", {"live": 0})
    return Check(True, None, {"live": live})
