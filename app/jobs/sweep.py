"""The safety net: deliver every message still pending, whatever happened to the job that should
have sent it, and the periodic housekeeping (sessions, sign-in locks, audit checkpoints).

`sweep` (the `ecaf timers sweep` command) also fires every due timer; a worker's timer loop does
that on its own thread (app/jobs/timers.py), so a hanging channel here never holds a deadline.
Each part is guarded on its own: one failing part never stops the others."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

from sqlalchemy import delete, text

from app import metrics
from app.clock import now
from app.models import WebSession
from app.services import shared_records

from .outbox_batches import deliver_due
from .runtime import Runtime
from .timers import fire_due_timers

log = logging.getLogger(__name__)
# The advisory lock key that lets one process at a time do the housekeeping ("eCAFswep" in ASCII).
HOUSEKEEPING_LOCK = int.from_bytes(b"eCAFswep", "big")


@dataclass
class SweepReport:
    woken: int = 0
    failed: int = 0
    delivered: int = 0
    undelivered: int = 0


def sweep_timers(runtime: Runtime) -> SweepReport:
    timers = fire_due_timers(runtime)
    return SweepReport(woken=timers.woken, failed=timers.failed)


def sweep_outbox(runtime: Runtime, stop=None) -> SweepReport:
    """Deliver every message whose next try is due (the job that should have sent it was lost, an
    earlier try failed, or a deadline of this worker wrote it), in claimed batches
    (app/jobs/outbox_batches.py). `stop` (an Event) ends it between two batches."""
    report = deliver_due(runtime.db, runtime.config, stop)
    return SweepReport(delivered=report.delivered, undelivered=report.undelivered)


def purge_sessions(runtime: Runtime) -> int:
    """Remove session rows that can never be used again: ended, or past the absolute limit."""
    config = runtime.config
    oldest = now() - timedelta(hours=config.absolute_timeout_hours)
    idle = now() - timedelta(minutes=config.idle_timeout_minutes)
    with runtime.db.session() as session:
        result = session.execute(delete(WebSession).where(
            WebSession.revoked_at.is_not(None) | (WebSession.created_at < oldest) | (WebSession.last_seen_at < idle)))
        return result.rowcount


def sign_in_housekeeping(runtime: Runtime) -> int:
    """Lift sign-in locks whose time is up (the account is usable everywhere again) and forget idle counters."""
    from app.accounts import throttle

    with runtime.db.session() as session:
        lifted = throttle.lift_expired_locks(session, runtime.config)
        throttle.purge_stale(session)
        return lifted


def end_expired_shares(runtime: Runtime) -> int:
    """Approved shares under the duty to share whose expiry has come: their process records the end
    (the access itself ends by the clock, whenever this runs)."""
    return shared_records.expire_due(runtime)


def checkpoint_audit_trail(runtime: Runtime) -> None:
    """A signed checkpoint of the audit trail's head outside the database, when one is due."""
    from app.audit_checkpoints import checkpoint_if_due

    try:
        checkpoint_if_due(runtime)
    except Exception:
        log.exception("audit checkpoint failed")  # the next sweep tries again


@contextmanager
def _one_sweeper(runtime: Runtime) -> Iterator[bool]:
    """Whether this process may do the housekeeping now: on PostgreSQL, several workers each sweep
    on their own interval, but never two at once (a lock lifted twice, two checkpoints).

    The lock is a transaction's (pg_try_advisory_xact_lock), held by a transaction open for the
    whole housekeeping: it goes when that transaction ends, however it ends (a rollback, a closed
    or lost connection), so no failed unlock can leave it held on a pooled connection."""
    if not runtime.db.is_postgresql:
        yield True
        return
    connection = runtime.db.engine.connect()
    try:
        connection.begin()
        mine = connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                  {"key": HOUSEKEEPING_LOCK}).scalar()
        yield bool(mine)
    finally:
        try:
            connection.close()  # rolls the transaction back (it changed nothing), and the lock goes with it
        except Exception as error:  # noqa: BLE001 - a connection that cannot even roll back is discarded
            log.warning("sweep: ending the housekeeping lock's transaction failed (%s); the connection is "
                        "discarded, and the lock with it", type(error).__name__)


def housekeeping(runtime: Runtime) -> bool:
    """Sessions, sign-in locks, expired shares and the audit checkpoint, each guarded on its own and timed.
    Returns False when another process was doing it at that moment."""
    with _one_sweeper(runtime) as mine:
        if not mine:
            return False
        started = time.monotonic()
        for part in (purge_sessions, sign_in_housekeeping, end_expired_shares, checkpoint_audit_trail):
            try:
                part(runtime)
            except Exception:  # noqa: BLE001 - the next sweep tries again; the other parts still run
                log.exception("sweep: %s failed", part.__name__)
        metrics.sweep_took(time.monotonic() - started)
    return True


def sweep(runtime: Runtime) -> SweepReport:
    """Everything at once: due timers, due messages and the housekeeping (`ecaf timers sweep`)."""
    timers = sweep_timers(runtime)
    outbox = sweep_outbox(runtime)
    housekeeping(runtime)
    return SweepReport(timers.woken, timers.failed, outbox.delivered, outbox.undelivered)
