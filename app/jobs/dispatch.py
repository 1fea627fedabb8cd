"""After a step commits: deliver its messages soon. Deadlines need nothing from here: they are
read from the database by the timer loop (app/jobs/timers.py).

With REDIS_URL a `deliver_message` job goes through rq, so the message is sent within a second
(`ecaf worker` runs the jobs); without it the same work runs in threads of this process, so
`make run` needs nothing but Python. Either way the sweep delivers whatever a lost job did not.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime, timedelta

from app.clock import now
from app.config import Config
from app.engine.step_retries import is_connection_error

from .delivery import DeliveryDeferred, DeliveryFailed, deliver
from .failing_deadlines import FailingDeadlines
from .loops import Loop
from .sweep import housekeeping, sweep_outbox
from .timers import TimerReport, fire_due_timers, pause_before_next_pass

log = logging.getLogger(__name__)
# A command to Redis never waits longer than this: a stalled Redis must not hold a web request.
REDIS_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 3, "health_check_interval": 30}


def redis_client(url: str):
    from redis import Redis

    return Redis.from_url(url, **REDIS_TIMEOUTS)


class RqDispatcher:
    def __init__(self, config: Config, redis=None):
        from rq import Queue

        self.redis = redis or redis_client(config.redis_url)
        self.queue = Queue(config.queue_name, connection=self.redis, serializer="json")

    def episode_stepped(self, episode_id: int, next_timer_at: datetime | None) -> None:
        """Nothing to schedule: every worker's timer loop reads `next_timer_at` from the database."""

    def messages_queued(self, message_ids: list[int]) -> None:
        from .tasks import deliver_message

        # No rq retry: a failed try records its next attempt on the row and the sweep makes it.
        for message_id in message_ids:
            self.queue.enqueue(deliver_message, message_id, job_id=f"deliver-{message_id}", job_timeout=120,
                               result_ttl=600, failure_ttl=3600)


class InProcessDispatcher:
    """The jobs of a process without Redis (`ecaf run`, `make run`): the same rules as a worker.

    Two threads: the timer loop wakes due episodes from the database as each comes due (at least
    every `timer_poll_seconds`);
    the delivery loop sends the messages steps queued, retries due ones and runs the sweep's
    housekeeping every `sweep_interval` seconds. A hanging channel holds only the second."""

    def __init__(self, runtime, sweep_interval: float = 60.0):
        self.runtime = runtime
        self.sweep_interval = sweep_interval
        self._queued: deque[int] = deque()
        self._stop = threading.Event()
        self._next_sweep = now()
        self._failing = FailingDeadlines()  # deadlines that keep failing wait between tries
        self._timer_report: TimerReport | None = None
        self._timers = Loop("timers", self._fire_timers, lambda: pause_before_next_pass(self._timer_report,
                                                                                        self._poll_seconds()),
                            self._stop, on_error=self._recover)
        self._deliveries = Loop("deliveries", self._deliver_and_sweep, self._poll_seconds, self._stop,
                                on_error=self._recover)

    def _poll_seconds(self) -> float:
        return min(float(self.runtime.config.timer_poll_seconds), float(self.sweep_interval) or 1.0)

    def _fire_timers(self) -> None:
        self._timer_report = None  # after a failure the loop waits its poll
        self._timer_report = fire_due_timers(self.runtime, stop=self._stop, failing=self._failing)

    def _recover(self, error: BaseException) -> None:
        if is_connection_error(error):
            self.runtime.db.dispose()  # every pooled connection may be dead: start afresh

    def episode_stepped(self, episode_id: int, next_timer_at: datetime | None) -> None:
        """Nothing to schedule: the timer loop reads `next_timer_at` from the database."""

    def messages_queued(self, message_ids: list[int]) -> None:
        self._queued.extend(message_ids)
        self._deliveries.nudge()

    def _deliver_queued(self) -> int:
        sent = 0
        while self._queued and not self._stop.is_set():
            message_id = self._queued.popleft()
            try:
                deliver(self.runtime.db, self.runtime.config, message_id)
            except DeliveryFailed as exc:  # its next try is on the row: the delivery loop makes it when due
                (log.debug if isinstance(exc, DeliveryDeferred) else log.warning)("%s", exc)
            except Exception:  # noqa: BLE001 - the row is still pending: the next pass retries it
                log.exception("delivering message %s failed", message_id)
            sent += 1
        return sent

    def _deliver_and_sweep(self) -> int:
        ran = self._deliver_queued()
        ran += sweep_outbox(self.runtime, self._stop).delivered
        if now() >= self._next_sweep:
            self._next_sweep = now() + timedelta(seconds=self.sweep_interval)
            housekeeping(self.runtime)
        return ran

    def run_due(self) -> int:
        """Run everything due now, here: due timers (from the database), queued and due messages,
        and the housekeeping when its time has come. Returns the number of timers and messages."""
        ran = 0
        for part in (lambda: fire_due_timers(self.runtime, failing=self._failing).woken, self._deliver_and_sweep):
            try:
                ran += part()
            except Exception:  # noqa: BLE001 - as in the loops: logged, and the next pass tries again
                log.exception("background jobs failed")
        return ran

    def start(self) -> None:
        self._stop.clear()
        self._timers.start()
        self._deliveries.start()

    def stop(self) -> None:
        self._stop.set()
        self._timers.join(timeout=10)
        self._deliveries.join(timeout=10)


def dispatcher_for(config: Config, runtime):
    if config.redis_url:
        return RqDispatcher(config)
    return InProcessDispatcher(runtime, config.sweep_interval_seconds)
