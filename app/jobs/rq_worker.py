"""rq's worker for delivery jobs, kept serving whatever happens to Redis or the database.

Jobs run in this thread (rq's SimpleWorker): the process also runs the timer, delivery and
heartbeat loops on threads with pooled database connections, and forking such a process is
unsafe. rq's own work() ends on a Redis timeout ("Redis connection timeout, quitting"), on an
unexpected error, and its start needs Redis; `serve` starts a fresh one after each with capped
backoff, so only a stop request ends it.
"""
from __future__ import annotations

import logging
import threading
import time

from rq import SimpleWorker
from rq.exceptions import StopRequested

from .dispatch import REDIS_TIMEOUTS
from .loops import backoff

log = logging.getLogger(__name__)
# rq's worker and Redis keys expire after this; its wait for a job times out 15 s sooner, and its
# connection's read timeout 10 s later, so a stalled Redis is noticed within a minute or so.
WORKER_TTL = 60
# A worker that served this long before ending starts its backoff afresh.
HEALTHY_AFTER_SECONDS = 60
# Trying a Redis that is down every few seconds costs nothing, and serves again soon after it is back.
RECONNECT_CAP_SECONDS = 5.0


class DeliveryWorker(SimpleWorker):
    """SimpleWorker that leaves signals to the process and keeps no pubsub thread (one per
    Redis outage would pile up, each retrying forever); `busy` says a job is running."""

    max_connection_wait_time = RECONNECT_CAP_SECONDS
    busy = False

    def _install_signal_handlers(self) -> None:
        pass  # app/jobs/worker.py: a warm stop lets the job in progress finish

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass

    def execute_job(self, job, queue) -> None:
        self.busy = True
        try:
            super().execute_job(job, queue)
        finally:
            self.busy = False


class RqSupervisor:
    """Runs DeliveryWorker over `queue_name` until `stop` is set, starting a fresh one (new Redis
    connection, new name) whenever one ends for any other reason."""

    def __init__(self, redis_url: str, queue_name: str, stop: threading.Event):
        self.redis_url = redis_url
        self.queue_name = queue_name
        self.stop = stop
        self.state = "starting"
        self.current: DeliveryWorker | None = None
        # The main thread is starting rq's worker or inside its work(), not in a job: a stop may
        # interrupt what it waits for (a job, or a stalled Redis), as rq itself does.
        self.interruptible = False

    def _new_worker(self) -> DeliveryWorker:
        from redis import Redis

        connection = Redis.from_url(self.redis_url, **REDIS_TIMEOUTS)
        return DeliveryWorker([self.queue_name], connection=connection, serializer="json", worker_ttl=WORKER_TTL)

    def serve(self, burst: bool = False) -> None:
        failures = 0
        while not self.stop.is_set():
            began, problem = time.monotonic(), None
            try:
                self.interruptible = True
                try:
                    worker = self.current = self._new_worker()
                    if self.stop.is_set():
                        break
                    self.state = "serving"
                    worker.work(burst=burst, logging_level=None)
                finally:
                    self.interruptible = False
                if burst:
                    return
            except StopRequested:
                break
            except Exception as error:  # noqa: BLE001 - Redis or the database: start afresh below
                problem = f"{type(error).__name__}: {error}"
            finally:
                self._close(self.current)
                self.current = None
            if self.stop.is_set():
                break
            failures = 1 if time.monotonic() - began > HEALTHY_AFTER_SECONDS else failures + 1
            wait = backoff(failures, RECONNECT_CAP_SECONDS)
            self.state = "reconnecting"
            log.error("the delivery worker (rq) stopped: %s; starting a fresh one in %.0fs (%d in a row)",
                      problem or "rq's work loop ended: Redis timed out or a job failed it", wait, failures)
            self.stop.wait(wait)
        self.state = "stopped"

    def request_stop(self) -> None:
        """From the signal handler: the job in progress finishes; an idle wait for a job ends now."""
        worker = self.current
        if worker is not None:
            worker._stop_requested = True  # rq's loop checks this after each job
        if self.interruptible and not (worker is not None and worker.busy):
            raise StopRequested()  # rq's own way out of a blocking wait; caught in serve()

    @staticmethod
    def _close(worker: DeliveryWorker | None) -> None:
        if worker is None:
            return
        try:
            worker.connection.close()
        except Exception:  # noqa: BLE001 - Redis may be gone: nothing to close then
            pass
