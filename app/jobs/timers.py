"""Deadlines come from the database: each episode's `next_timer_at` (indexed) is the schedule.

A pass wakes every episode due when it starts, oldest due first, in claimed batches: one
transaction locks up to BATCH due episodes (FOR UPDATE SKIP LOCKED on PostgreSQL, so several
workers share the due set and none waits on another's batch), fires each one's timers with the
row it already holds, in a savepoint of its own, and commits once (one commit, one turn of the
audit chain's lock, per batch). A failing episode only rolls back its own savepoint: a handler's
fault puts that episode in error as ever, a passing database error (a lock timeout) is tried again
a few times and then leaves it due for the next pass, and only a lost connection ends the batch
(nothing of it committed: every episode in it stays due). A batch stops taking episodes after
BATCH_SECONDS, so the locks it holds are brief for anyone stepping one of them. Audit rows are
sealed at the batch's commit, not in each savepoint: when that commit fails for a reason that will
not pass (one episode's step wrote what cannot be sealed), the batch's episodes are woken again one
at a time, each in a transaction of its own (`Engine.wake`), so only the faulty one fails and the
others' deadlines fire.

Nothing here depends on Redis: a Redis outage delays no deadline. Between passes a loop sleeps
until the next deadline (`TimerReport.next_due`), never longer than `timer_poll_seconds`, so a
deadline fires within moments of its time. A deadline that fails for any other reason than its
handler's or the database's passing trouble waits before its next try
(app/jobs/failing_deadlines.py), so it neither floods the log nor slows every pass.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import and_, func, or_, select

from app import metrics, request_ids
from app.clock import now
from app.engine.errors import StepInterrupted
from app.engine.runner import StepResult
from app.engine.step_retries import CONNECTION_KINDS, transient_kind, with_retries
from app.models import Episode, HumanTask

from .failing_deadlines import FailingDeadlines
from .runtime import Runtime

log = logging.getLogger(__name__)
step_log = logging.getLogger("ecaf.step")
BATCH = 50
# How long a batch goes on taking episodes: its row locks make a user's step on one of them wait.
BATCH_SECONDS = 1.0
WAKEABLE = ("open", "error", "closed")  # closed: a six-month outcome check waits (engine/follow_up.py)


@dataclass
class TimerReport:
    woken: int = 0
    failed: int = 0
    # The earliest deadline after the pass began (None: none waiting): the loop sleeps until then.
    next_due: datetime | None = None


@dataclass
class _Wake:
    episode_id: int
    due: datetime
    seconds: float = 0.0
    result: StepResult | None = None
    error: Exception | None = None
    alone: bool = False  # woken in a transaction of its own (Engine.wake measured it and sent its messages)


@dataclass
class _Batch:
    wakes: list[_Wake] = field(default_factory=list)
    last: tuple[datetime, int] | None = None  # the cursor: the last episode this batch looked at
    complete: bool = True  # it looked at every episode it claimed


def _due(until: datetime, after: tuple[datetime, int] | None):
    query = select(Episode).where(Episode.next_timer_at <= until, Episode.status.in_(WAKEABLE))
    if after is not None:
        due, episode_id = after
        query = query.where(or_(Episode.next_timer_at > due,
                                and_(Episode.next_timer_at == due, Episode.id > episode_id)))
    return query.order_by(Episode.next_timer_at, Episode.id)


def _wake_one(runtime: Runtime, session, episode: Episode, ready_rows: list[HumanTask]) -> _Wake:
    """Fire one claimed episode in a savepoint; a passing database error is tried again a few times."""
    wake = _Wake(episode.id, episode.next_timer_at)
    tries = []

    def fire() -> StepResult | None:
        tries.append(1)
        with session.begin_nested():
            # A try after a rolled-back one reads its rows afresh: what the first wrote is gone.
            return runtime.engine.wake_claimed(session, episode, ready_rows if len(tries) == 1 else None)

    started = time.monotonic()
    try:
        wake.result = with_retries("wake", fire, episode_id=episode.id, pauses=runtime.engine.retry_pauses,
                                   not_here=CONNECTION_KINDS)
    except Exception as error:  # noqa: BLE001 - sorted by the caller: one episode's fault stays its own
        if transient_kind(error) in CONNECTION_KINDS:
            raise  # the batch's transaction is gone with its connection: none of it committed
        wake.error = error  # a handler's fault, or StepInterrupted when the retries ran out
    wake.seconds = time.monotonic() - started
    return wake


def _wake_batch(runtime: Runtime, batch: _Batch, until: datetime, limit: int, stop,
                failing: FailingDeadlines) -> None:
    """Claim up to `limit` due episodes after `batch.last`, wake each, commit once. `batch` says what
    was tried even when the commit fails."""
    budget = BATCH_SECONDS if runtime.db.is_postgresql else BATCH_SECONDS / 4  # SQLite: one writer at a time
    with runtime.db.session() as session:
        query = _due(until, batch.last).limit(limit)
        if runtime.db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        claimed = session.scalars(query).all()
        batch.complete = len(claimed) < limit
        ready_rows = _ready_rows(session, [episode.id for episode in claimed])
        started = time.monotonic()
        for episode in claimed:
            if (stop is not None and stop.is_set()) or time.monotonic() - started > budget:
                batch.complete = False  # the rest are unlocked at commit, for the next batch
                break
            batch.last = (episode.next_timer_at, episode.id)
            if failing.waiting(episode.id, episode.next_timer_at):
                continue
            batch.wakes.append(_wake_one(runtime, session, episode, ready_rows.get(episode.id, [])))


def _ready_rows(session, episode_ids: list[int]) -> dict[int, list[HumanTask]]:
    """The ready task rows of a claimed batch, in one read rather than one per episode."""
    found: dict[int, list[HumanTask]] = {}
    if episode_ids:
        for row in session.scalars(select(HumanTask).where(HumanTask.episode_id.in_(episode_ids),
                                                           HumanTask.status == "ready")):
            found.setdefault(row.episode_id, []).append(row)
    return found


def _wake_alone(runtime: Runtime, batch: _Batch) -> None:
    """The batch's commit failed for a reason that will not pass: wake its episodes again one at a
    time, each in a transaction of its own, so only the one at fault fails (and waits in
    FailingDeadlines) while the others' deadlines fire."""
    for wake in batch.wakes:
        wake.result, wake.error, wake.alone = None, None, True
        started = time.monotonic()
        try:
            wake.result = runtime.engine.wake(wake.episode_id)
        except Exception as error:  # noqa: BLE001 - sorted by the caller, as a batch's faults are
            if transient_kind(error) in CONNECTION_KINDS:
                raise
            wake.error = error
        wake.seconds = time.monotonic() - started


def _observed(wake: _Wake) -> None:
    """Each wake is measured and logged as a step of its own, as every other step is."""
    if wake.alone:
        return  # Engine.wake did it
    if wake.result is not None:
        outcome = "error" if wake.result.status == "error" else "ok"
        metrics.timer_fired((now() - wake.due).total_seconds())
    elif wake.error is None:
        return  # nothing was due after all
    else:
        outcome = "transient" if isinstance(wake.error, StepInterrupted) else "failed"
    metrics.step_observed("wake", wake.seconds, outcome)
    step_log.info("step", extra={"event": {"kind": "wake", "episode_id": wake.episode_id, "outcome": outcome,
                                           "seconds": round(wake.seconds, 4), "request_id": request_ids.current()}})


def next_deadline(runtime: Runtime, after: datetime) -> datetime | None:
    """The earliest deadline later than `after` (one indexed read)."""
    with runtime.db.session() as session:
        return session.scalar(select(func.min(Episode.next_timer_at)).where(
            Episode.next_timer_at > after, Episode.status.in_(WAKEABLE)))


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
        batch = _Batch(last=after)
        try:
            _wake_batch(runtime, batch, until, limit, stop, failing)
        except Exception as error:
            kind = transient_kind(error)
            if kind in CONNECTION_KINDS:
                raise StepInterrupted("the database could not be reached: the due deadlines wait",
                                      kind=kind) from error
            if kind is None and not batch.wakes:
                raise
            if kind is None:  # e.g. an audit row one step wrote could not be sealed at the commit
                log.error("a batch of %d deadlines could not be committed (%s: %s); waking them one at a time",
                          len(batch.wakes), type(error).__name__, error)
                _wake_alone(runtime, batch)
            else:
                # e.g. the commit waited too long for the audit chain: nothing of the batch was
                # committed, so every episode in it stays due for the next pass.
                log.warning("a batch of deadlines was rolled back after a transient database error (%s); they "
                            "stay due for the next pass", kind)
                return report
        after = batch.last
        for wake in batch.wakes:  # committed: now what follows each
            _observed(wake)
            if wake.result is not None:
                report.woken += 1
                failing.fired(wake.episode_id)
                if not wake.alone:
                    runtime.engine.after_wake(wake.result)
            elif isinstance(wake.error, StepInterrupted):
                report.failed += 1
                log.warning("the deadline of episode %s stays due: %s (%s)", wake.episode_id, wake.error,
                            wake.error.kind)
            elif wake.error is not None:
                report.failed += 1
                failing.failed(runtime, wake.episode_id, wake.due, wake.error)
            if progress is not None:
                progress()
        if stop is not None and stop.is_set():
            return report
        if batch.complete:
            report.next_due = next_deadline(runtime, until)
            return report


def pause_before_next_pass(report: TimerReport | None, poll_seconds: float) -> float:
    """Until the next deadline, never longer than the poll (steps elsewhere set new deadlines)."""
    if report is None or report.next_due is None:
        return poll_seconds
    return max(0.0, min(poll_seconds, (report.next_due - now()).total_seconds()))
