"""Deadlines that cannot be fired for a reason that will not pass by itself.

A handler's own fault puts its episode in error within the step, and a passing database error
leaves the deadline due for the next pass. Anything else (a state that cannot be loaded, say) would
otherwise be tried, and its traceback logged, on every timer pass for ever. Here each such
deadline waits before its next try, 1 minute doubling to 1 hour (in memory, per process: a restart
tries them all again once), is counted in `ecaf_timer_wake_failures_total`, and after a few
failures is shown to administrators as an episode error naming the problem.

The memory is forgotten for an episode when its wake works, or when its `next_timer_at` changes
(someone repaired it, or another step moved the deadline).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app import audit, metrics
from app.clock import now
from app.models import Episode
from app.uk_time import date_time

log = logging.getLogger(__name__)

FIRST_PAUSE_SECONDS = 60
LONGEST_PAUSE_SECONDS = 3600
# After this many failures in a row the episode is put in error, for an administrator to see.
RECORD_AFTER_FAILURES = 3
# Episodes remembered at most: past that the oldest is forgotten (and simply tried on the next pass).
REMEMBERED_AT_MOST = 10_000
# The error shown to administrators names the exception; its text is cut to this length.
PROBLEM_CHARS = 300
# What the administrators' pages show as the failed step.
FAILED_STEP = "Deadline"


def pause_after(failures: int) -> float:
    """60 s after the first failure, then 2, 4 ... minutes, never more than an hour."""
    return float(min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** max(0, failures - 1)))


@dataclass
class Failing:
    due: datetime
    failures: int
    next_try: datetime


class FailingDeadlines:
    """What one timer loop remembers of the deadlines it could not fire. Safe across threads."""

    def __init__(self, remembered_at_most: int = REMEMBERED_AT_MOST):
        self._episodes: OrderedDict[int, Failing] = OrderedDict()
        self._limit = remembered_at_most
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._episodes)

    def waiting(self, episode_id: int, due: datetime) -> bool:
        """Whether this deadline is in its pause (the pass leaves it alone)."""
        with self._lock:
            failing = self._episodes.get(episode_id)
            if failing is None:
                return False
            if failing.due != due:  # the deadline moved: a fresh start
                del self._episodes[episode_id]
                return False
            return now() < failing.next_try

    def fired(self, episode_id: int) -> None:
        with self._lock:
            failing = self._episodes.pop(episode_id, None)
        if failing is not None:
            log.warning("the deadline of episode %s fired after %d failures", episode_id, failing.failures)

    def failed(self, runtime, episode_id: int, due: datetime, error: BaseException) -> Failing:
        """Count the failure, log it (the traceback the first time only) and set the next try;
        after RECORD_AFTER_FAILURES, put the episode in error. Never raises."""
        with self._lock:
            failing = self._episodes.pop(episode_id, None)
            failures = failing.failures + 1 if failing is not None and failing.due == due else 1
            failing = Failing(due, failures, now() + timedelta(seconds=pause_after(failures)))
            self._episodes[episode_id] = failing
            while len(self._episodes) > self._limit:
                self._episodes.popitem(last=False)
        metrics.timer_wake_failed()
        pause = pause_after(failures)
        if failures == 1:
            log.error("the deadline of episode %s could not be fired: %s; trying again in %.0f minutes", episode_id,
                      _problem(error), pause / 60, exc_info=error)
        else:
            log.error("the deadline of episode %s failed again (%d in a row): %s; trying again in %.0f minutes",
                      episode_id, failures, _problem(error), pause / 60)
        if failures >= RECORD_AFTER_FAILURES:  # again later if it could not be recorded: a no-op once in error
            try:
                record_on_episode(runtime, episode_id, due, failures, error)
            except Exception as recording:  # noqa: BLE001 - the next failure's log line says it again
                log.error("could not record the failing deadline on episode %s: %s", episode_id, _problem(recording))
        return failing


def record_on_episode(runtime, episode_id: int, due: datetime, failures: int, error: BaseException) -> bool:
    """Put an open episode whose deadline keeps failing in error, in a transaction of its own, with
    an audit row. Left alone: an episode someone else is stepping now, one already in error (its
    first error stays shown), and one whose deadline has moved since. Returns whether it was put."""
    with runtime.db.session() as session:
        query = select(Episode).where(Episode.id == episode_id)
        if runtime.db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        episode = session.scalar(query)
        if episode is None or episode.status != "open" or episode.next_timer_at != due:
            return False
        episode.status, episode.error_task, episode.updated_at = "error", FAILED_STEP, now()
        episode.last_error = (f"the deadline due {date_time(due)} could not be fired ({failures} tries): "
                              f"{_problem(error)}")
        audit.record(session, "deadline_failed", episode_id=episode.id, failures=failures,
                     error=type(error).__name__)
    log.error("episode %s is now in error: its deadline could not be fired %d times", episode_id, failures)
    return True


def _problem(error: BaseException) -> str:
    said = str(error)
    if len(said) > PROBLEM_CHARS:
        said = said[:PROBLEM_CHARS] + "…"
    return f"{type(error).__name__}: {said}" if said else type(error).__name__
