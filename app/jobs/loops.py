"""A periodic piece of background work on its own thread, which no exception can end.

Every iteration runs under a fresh request id and is wrapped: an error is logged (with its
traceback the first time, one line after that) and the loop waits with capped backoff before
trying again, so after a database or Redis outage it simply goes on when the service answers.
Only a stop request ends it, after the iteration in progress.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from app import request_ids

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


def backoff(failures: int, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """1, 2, 4, 8 ... seconds after 1, 2, 3, 4 ... failures in a row, never more than `cap`."""
    return float(min(cap, 2 ** max(0, failures - 1)))


class Loop:
    """Runs `work()` every `interval()` seconds on a daemon thread until `stop` is set.

    `interval` is asked after each iteration, so a changed setting applies at once. `nudge()`
    starts the next iteration now (e.g. a message was queued)."""

    def __init__(self, name: str, work: Callable[[], object], interval: Callable[[], float],
                 stop: threading.Event, *, max_backoff: float = MAX_BACKOFF_SECONDS,
                 on_error: Callable[[BaseException], None] | None = None):
        self.name = name
        self.work = work
        self.interval = interval
        self.stop = stop
        self.max_backoff = max_backoff
        self.on_error = on_error
        self.failures = 0
        self._nudged = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """One iteration, never raising. Returns whether it worked."""
        try:
            with request_ids.bound(request_ids.new_id("job-")):
                self.work()
        except Exception as error:  # noqa: BLE001 - the loop must outlive any fault
            self.failures += 1
            if self.failures == 1:
                log.exception("%s failed: %s: %s; trying again in %.0fs", self.name, type(error).__name__, error,
                              self._pause())
            else:
                log.error("%s failed again (%d in a row): %s: %s; trying again in %.0fs", self.name, self.failures,
                          type(error).__name__, error, self._pause())
            if self.on_error is not None:
                try:
                    self.on_error(error)
                except Exception:  # noqa: BLE001
                    log.exception("%s: recovering from the error failed too", self.name)
            return False
        if self.failures:
            log.warning("%s is working again after %d failures", self.name, self.failures)
            self.failures = 0
        return True

    def _pause(self) -> float:
        """After a failure: capped backoff, but never longer than the loop's own interval (a timer
        poll every second keeps trying every second, one log line each)."""
        return max(0.05, min(backoff(self.failures, self.max_backoff), max(self.interval(), 1.0)))

    def run(self) -> None:
        while not self.stop.is_set():
            ok = self.run_once()
            try:
                wait = self.interval() if ok else self._pause()
            except Exception:  # noqa: BLE001 - a broken setting must not end the loop either
                log.exception("%s: could not read its interval", self.name)
                wait = self.max_backoff
            self._nudged.wait(max(0.0, wait))
            self._nudged.clear()

    def nudge(self) -> None:
        self._nudged.set()

    def start(self) -> "Loop":
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run_guarded, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException:  # noqa: BLE001 - said loudly: nothing should get here
            log.critical("%s stopped unexpectedly", self.name, exc_info=True)
            raise

    def join(self, timeout: float | None = None) -> None:
        """Wake the loop so it sees the stop request, and wait for its iteration in progress."""
        self.nudge()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
