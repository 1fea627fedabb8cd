"""The safety net: wake every episode whose timer is due and deliver every message still
pending, whatever happened to the jobs that should have done it."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from app.clock import now
from app.models import Episode, WebSession

from .delivery import DeliveryFailed, deliver, due_messages
from .runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    woken: int = 0
    failed: int = 0
    delivered: int = 0
    undelivered: int = 0


def due_episodes(runtime: Runtime, limit: int = 1000) -> list[int]:
    with runtime.db.session() as session:
        return list(session.scalars(
            select(Episode.id).where(Episode.next_timer_at <= now(), Episode.status.in_(("open", "error")))
            .order_by(Episode.next_timer_at).limit(limit)))


def sweep_timers(runtime: Runtime, limit: int = 1000) -> SweepReport:
    report = SweepReport()
    while True:
        ids = due_episodes(runtime, limit)
        progressed = 0
        for episode_id in ids:
            try:
                if runtime.engine.wake(episode_id) is not None:
                    report.woken += 1
                    progressed += 1
            except Exception:
                report.failed += 1
                log.exception("waking episode %s failed", episode_id)
        if len(ids) < limit or not progressed:
            return report


def sweep_outbox(runtime: Runtime) -> SweepReport:
    report = SweepReport()
    for message_id in due_messages(runtime.db):
        try:
            deliver(runtime.db, runtime.config, message_id)
            report.delivered += 1
        except DeliveryFailed as exc:
            report.undelivered += 1
            log.warning("%s", exc)
    return report


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


def checkpoint_audit_trail(runtime: Runtime) -> None:
    """A signed checkpoint of the audit trail's head outside the database, when one is due."""
    from app.audit_checkpoints import checkpoint_if_due

    try:
        checkpoint_if_due(runtime)
    except Exception:
        log.exception("audit checkpoint failed")  # the next sweep tries again


def sweep(runtime: Runtime) -> SweepReport:
    timers, outbox = sweep_timers(runtime), sweep_outbox(runtime)
    purge_sessions(runtime)
    sign_in_housekeeping(runtime)
    checkpoint_audit_trail(runtime)
    return SweepReport(timers.woken, timers.failed, outbox.delivered, outbox.undelivered)
