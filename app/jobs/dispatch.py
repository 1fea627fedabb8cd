"""After a step commits: schedule the episode's next wake-up and deliver its messages.

With REDIS_URL this goes through rq (a worker started by `ecaf worker`); without it the same
jobs run in a thread of the web process, so `make run` needs nothing but Python.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
from datetime import datetime, timedelta

from app.clock import now
from app.config import Config

from .delivery import DeliveryFailed, deliver
from .sweep import sweep

log = logging.getLogger(__name__)
RETRY_INTERVALS = [10, 60, 300, 900, 3600]


class RqDispatcher:
    def __init__(self, config: Config, redis=None):
        from redis import Redis
        from rq import Queue

        self.redis = redis or Redis.from_url(config.redis_url)
        self.queue = Queue(config.queue_name, connection=self.redis, serializer="json")

    def episode_stepped(self, episode_id: int, next_timer_at: datetime | None) -> None:
        if next_timer_at is None:
            return
        from .tasks import wake_episode

        # One job per (episode, due time); a wake-up that finds nothing due does nothing.
        self.queue.enqueue_at(next_timer_at, wake_episode, episode_id,
                              job_id=f"wake-{episode_id}-{int(next_timer_at.timestamp())}", job_timeout=300)

    def messages_queued(self, message_ids: list[int]) -> None:
        from rq import Retry

        from .tasks import deliver_message

        for message_id in message_ids:
            self.queue.enqueue(deliver_message, message_id, job_id=f"deliver-{message_id}", job_timeout=120,
                               retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS))

    def enqueue_sweep(self, slot: int) -> None:
        from rq.exceptions import DuplicateJobError

        from .tasks import sweep_all

        try:
            self.queue.enqueue(sweep_all, job_id=f"sweep-{slot}", unique=True, job_timeout=600)
        except DuplicateJobError:
            pass  # another worker queued this interval's sweep already


class InProcessDispatcher:
    """Runs wake-ups and deliveries in one background thread, with a periodic sweep."""

    def __init__(self, runtime, sweep_interval: float = 60.0):
        self.runtime = runtime
        self.sweep_interval = sweep_interval
        self._heap: list[tuple[datetime, int, str, int]] = []
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_sweep = now()

    def episode_stepped(self, episode_id: int, next_timer_at: datetime | None) -> None:
        if next_timer_at is not None:
            self._push(next_timer_at, "wake", episode_id)

    def messages_queued(self, message_ids: list[int]) -> None:
        for message_id in message_ids:
            self._push(now(), "deliver", message_id)

    def _push(self, at: datetime, kind: str, target: int) -> None:
        with self._wakeup:
            heapq.heappush(self._heap, (at, next(self._counter), kind, target))
            self._wakeup.notify()

    def run_due(self) -> int:
        """Run everything due now (and the sweep, when its time has come). Returns jobs run."""
        ran = 0
        while True:
            with self._wakeup:
                if not self._heap or self._heap[0][0] > now():
                    break
                _, _, kind, target = heapq.heappop(self._heap)
            ran += 1
            try:
                if kind == "wake":
                    self.runtime.engine.wake(target)
                else:
                    deliver(self.runtime.db, self.runtime.config, target)
            except DeliveryFailed as exc:
                log.warning("%s", exc)  # the sweep retries it when its next attempt is due
            except Exception:
                log.exception("background %s of %s failed", kind, target)
        if now() >= self._next_sweep:
            self._next_sweep = now() + timedelta(seconds=self.sweep_interval)
            try:
                sweep(self.runtime)
            except Exception:
                log.exception("sweep failed")
        return ran

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ecaf-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping:
            self.run_due()
            with self._wakeup:
                if self._stopping:
                    return
                horizon = self._next_sweep
                if self._heap:
                    horizon = min(horizon, self._heap[0][0])
                self._wakeup.wait(timeout=max(0.05, min((horizon - now()).total_seconds(), self.sweep_interval)))


def dispatcher_for(config: Config, runtime):
    if config.redis_url:
        return RqDispatcher(config)
    return InProcessDispatcher(runtime, config.sweep_interval_seconds)
