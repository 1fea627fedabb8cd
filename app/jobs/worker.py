"""`ecaf worker`: one process that fires deadlines, delivers messages and says it is alive.

- the timer loop (its own thread) wakes every episode whose `next_timer_at` has passed, in claimed
  batches, from the database alone: no deadline waits on Redis or on a channel. It sleeps until the
  next deadline, at most `timer_poll_seconds` (app/jobs/timers.py);
- the delivery loop (its own thread) sends every message whose next try is due (those the
  worker's own deadlines wrote at once), and runs the sweep's housekeeping every
  `sweep_interval_seconds`;
- rq's worker (this, the main thread) sends within a second each message the web app's steps queued;
- the heartbeat loop writes this worker's heartbeat to Redis every few seconds, with when the
  timer loop last got anywhere (a worker whose timer loop hangs is counted stuck, not live).

None of them ends on an error: each logs it and tries again with capped backoff. SIGTERM or
SIGINT is a warm stop (the job and steps in progress finish, the heartbeat goes, exit 0); a
second one stops at once. Under PROMETHEUS_MULTIPROC_DIR a worker removes, as it starts, the
figures of processes no longer running (a worker crash-looping under systemd would otherwise
leave files for ever), and marks its own dead as it stops.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from app.engine.step_retries import is_connection_error

from . import heartbeat
from .dispatch import redis_client
from .failing_deadlines import FailingDeadlines
from .loops import Loop
from .rq_worker import RqSupervisor
from .runtime import Runtime
from .sweep import housekeeping, sweep_outbox
from .timers import TimerReport, fire_due_timers, pause_before_next_pass

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0
# How long a warm stop waits for the loops' work in progress (a delivery is bounded by the
# channel timeouts, a step by the database's): systemd's TimeoutStopSec should be longer.
STOP_WAIT_SECONDS = 60.0


class WorkerProcess:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        config = runtime.config
        self.stop = threading.Event()
        self.name = heartbeat.worker_name()
        self.started_at = time.time()
        self.last_timers: float | None = None
        self.timers_progress: float | None = None
        self.timer_report: TimerReport | None = None
        self.failing = FailingDeadlines()
        self.last_sweep: float | None = None
        self._next_sweep = 0.0
        self._signals = 0
        self.rq = RqSupervisor(config.redis_url, config.queue_name, self.stop)
        self._redis = None

        def poll() -> float:
            return float(self.runtime.config.timer_poll_seconds)

        def until_next_deadline() -> float:
            return pause_before_next_pass(self.timer_report, poll())

        recover = self._recover
        self.timers = Loop("timers", self._fire_timers, until_next_deadline, self.stop, on_error=recover)
        self.deliveries = Loop("deliveries", self._deliver_and_sweep, poll, self.stop, on_error=recover)
        self.heartbeats = Loop("heartbeat", self._beat, lambda: HEARTBEAT_SECONDS, self.stop,
                               max_backoff=HEARTBEAT_SECONDS, on_error=self._forget_redis)
        # The messages this worker's own steps write (a deadline's) go to its delivery loop, not
        # through Redis: the timer thread never waits on Redis, even a stalled one.
        runtime.engine.dispatcher = self

    # ---------------------------------------------------------------- the engine's dispatcher
    def episode_stepped(self, episode_id: int, next_timer_at) -> None:
        """Nothing to schedule: the timer loops read `next_timer_at` from the database."""

    def messages_queued(self, message_ids: list[int]) -> None:
        self.deliveries.nudge()  # they are due now: the delivery loop's next pass sends them

    # ---------------------------------------------------------------- the loops' work
    def _fire_timers(self) -> None:
        self.timer_report = None  # after a failure the loop waits its poll, not for a deadline it never read
        self.timer_report = fire_due_timers(self.runtime, stop=self.stop, failing=self.failing,
                                            progress=self._timers_progressed)
        self.last_timers = time.time()

    def _timers_progressed(self) -> None:
        self.timers_progress = time.time()

    def _deliver_and_sweep(self) -> None:
        sweep_outbox(self.runtime, self.stop)
        if time.monotonic() >= self._next_sweep and not self.stop.is_set():
            self._next_sweep = time.monotonic() + self.runtime.config.sweep_interval_seconds
            housekeeping(self.runtime)
            self.last_sweep = time.time()

    def _beat(self) -> None:
        if self._redis is None:
            self._redis = redis_client(self.runtime.config.redis_url)
        heartbeat.beat(self._redis, self.name, self.started_at, pid=os.getpid(), rq=self.rq.state,
                       timers_at=self.last_timers, timers_progress_at=self.timers_progress,
                       timer_poll=float(self.runtime.config.timer_poll_seconds), sweep_at=self.last_sweep,
                       timers_failing=self.timers.failures, deliveries_failing=self.deliveries.failures)

    def _forget_redis(self, error: BaseException) -> None:
        self._redis = None  # a fresh client next time

    def _recover(self, error: BaseException) -> None:
        if is_connection_error(error):
            # Every pooled connection may be dead (a restart, pg_terminate_backend): start afresh.
            self.runtime.db.dispose()

    # ---------------------------------------------------------------- running and stopping
    def run(self, burst: bool = False) -> int:
        _clear_dead_metrics()
        try:
            return self._run(burst)
        finally:
            _mark_metrics_dead()  # however it ends

    def _run(self, burst: bool) -> int:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        log.info("worker %s: timers every %ss, sweep every %ss, deliveries from queue %r", self.name,
                 self.runtime.config.timer_poll_seconds, self.runtime.config.sweep_interval_seconds,
                 self.runtime.config.queue_name)
        if burst:
            # Once through everything that is due now, then stop (scripts and tests).
            for loop in (self.heartbeats, self.timers, self.deliveries):
                loop.run_once()
            self.rq.serve(burst=True)
        else:
            for loop in (self.heartbeats, self.timers, self.deliveries):
                loop.start()
            self.rq.serve()
        return self.shutdown()

    def shutdown(self) -> int:
        self.stop.set()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for loop in (self.timers, self.deliveries, self.heartbeats):
            loop.join(timeout=max(0.0, deadline - time.monotonic()))
            if loop.alive:
                log.error("worker %s: the %s loop did not finish in time", self.name, loop.name)
        try:
            heartbeat.forget(self._redis or redis_client(self.runtime.config.redis_url), self.name)
        except Exception as error:  # noqa: BLE001 - it expires by itself
            log.warning("worker %s: could not remove its heartbeat (%s); it expires by itself", self.name, error)
        self.runtime.db.dispose()
        log.info("worker %s stopped", self.name)
        return 0

    def _on_signal(self, signum: int, frame) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            log.warning("worker %s: second %s, stopping at once", self.name, name)
            _mark_metrics_dead()
            os._exit(128 + signum)
        log.info("worker %s: %s, stopping once the job and steps in progress finish", self.name, name)
        self.stop.set()
        for loop in (self.timers, self.deliveries, self.heartbeats):
            loop.nudge()
        self.rq.request_stop()  # last: it may raise to end rq's idle wait


def _clear_dead_metrics() -> None:
    """The figure files of processes that are gone (as `ecaf serve` does when it starts)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    try:
        from app.cli_serve import clear_dead_figures

        removed = clear_dead_figures(Path(directory))
    except Exception:  # noqa: BLE001 - figures are not worth a worker that does not start
        log.warning("could not remove the figures of stopped processes from %s", directory, exc_info=True)
        return
    if removed:
        log.info("removed %d metrics files of stopped processes from %s", removed, directory)


def _mark_metrics_dead() -> None:
    """Under prometheus_client's multiprocess mode, a stopped process's live gauges go with it."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
    except Exception:  # noqa: BLE001
        log.warning("could not mark this worker's metrics dead", exc_info=True)
