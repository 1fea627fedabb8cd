"""Deadlines come from the database: each episode's `next_timer_at` (indexed) is the schedule.

Every worker (and the in-process runner) polls it every `timer_poll_seconds` and wakes each
episode whose time has passed, oldest due first, in batches. `Engine.wake` locks the episode with
SKIP LOCKED and checks the due time again, so two workers never fire one timer twice, and nothing
here depends on Redis: a Redis outage delays no deadline. A deadline that fails for any other
reason than its handler's or the database's passing trouble waits before its next try
(app/jobs/failing_deadlines.py), so it neither floods the log nor slows every pass.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import and_, or_, select

from app.clock import now
from app.engine.errors import StepInterrupted
from app.engine.step_retries import CONNECTION_KINDS
from app.models import Episode

from .failing_deadlines import FailingDeadlines
from .runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 100
WAKEABLE = ("open", "error")


@dataclass
class TimerReport:
    woken: int = 0
    failed: int = 0


def _due_batch(runtime: Runtime, until: datetime, after: tuple[datetime, int] | None, limit: int):
    """(next_timer_at, id) of due episodes, oldest first, after the last one already seen."""
    query = select(Episode.next_timer_at, Episode.id).where(
        Episode.next_timer_at <= until, Episode.status.in_(WAKEABLE))
    if after is not None:
        due, episode_id = after
        query = query.where(or_(Episode.next_timer_at > due,
                                and_(Episode.next_timer_at == due, Episode.id > episode_id)))
    with runtime.db.session() as session:
        return list(session.execute(query.order_by(Episode.next_timer_at, Episode.id).limit(limit)).all())


def fire_due_timers(runtime: Runtime, limit: int = BATCH, stop=None, failing: FailingDeadlines | None = None,
                    progress: Callable[[], None] | None = None) -> TimerReport:
    """Wake every episode due now, each once per pass. An episode whose step the database could not
    finish stays due for the next pass; when the database itself is gone the pass stops there
    (raising), so its loop backs off instead of trying every episode in turn. `stop` (an Event)
    ends the pass between two episodes: a warm stop finishes the step in progress only.

    `failing` is the loop's memory of deadlines that fail for other reasons (a fresh one when not
    given: a single pass tries each once); `progress` is called after each deadline tried, so a
    long pass is not taken for a stuck one."""
    failing = failing if failing is not None else FailingDeadlines()
    report = TimerReport()
    until, after = now(), None
    while True:
        batch = _due_batch(runtime, until, after, limit)
        for due, episode_id in batch:
            if stop is not None and stop.is_set():
                return report
            after = (due, episode_id)
            if failing.waiting(episode_id, due):
                continue
            try:
                if runtime.engine.wake(episode_id) is not None:
                    report.woken += 1
                    failing.fired(episode_id)
            except StepInterrupted as interrupted:
                report.failed += 1
                if interrupted.kind in CONNECTION_KINDS:
                    raise
                log.warning("the deadline of episode %s stays due: %s (%s)", episode_id, interrupted,
                            interrupted.kind)
            except Exception as error:  # noqa: BLE001 - one episode's fault must not hold the others' deadlines
                report.failed += 1
                failing.failed(runtime, episode_id, due, error)
            if progress is not None:
                progress()
        if len(batch) < limit:
            return report
