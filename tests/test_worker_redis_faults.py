"""`ecaf worker` as a real process against Redis faults: it fires deadlines (and sends their
messages) with Redis refusing connections or accepting and never answering, stops on SIGTERM even
then, and comes back by itself after Redis is cut and restored or its connections are killed.
Redis is reached through a TCP proxy the test can cut and restore."""
from __future__ import annotations

import signal

import pytest

from app.models import Episode

from .worker_processes import (REDIS_DB, database_url, deadline_fired, eventually, overdue_episode,  # noqa: F401
                               proxy, queued_message, sent_by_rq, silent_port, status_of, workers)

pytestmark = pytest.mark.redis


# ---------------------------------------------------------------- deadlines need no Redis

@pytest.mark.parametrize("redis", ["refused", "stalled"])
def test_the_worker_fires_a_due_deadline_with_redis_out_of_reach(runtime, people, workers, proxy, redis):
    episode_id = overdue_episode(runtime, people)
    proxy.cut()  # Redis is unreachable from the start and stays so
    with silent_port() as silent:  # or it accepts connections and never answers
        worker = workers(proxy.url if redis == "refused" else f"redis://127.0.0.1:{silent}/{REDIS_DB}")
        _fires_without_redis(runtime, episode_id, worker, refused=redis == "refused")


def _fires_without_redis(runtime, episode_id, worker, refused: bool):
    fired = eventually(lambda: deadline_fired(runtime, episode_id), "the deadline to fire", worker=worker)
    assert len(fired) == 1
    # Its messages go out too: the delivery loop sends what no rq job could.
    eventually(lambda: status_of(runtime, fired[0].id) == "sent", "the alert to be delivered", worker=worker)
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).status == "open"
    if refused:
        worker.wait_for_log("starting a fresh one")  # rq's worker could not start, and is tried again
    worker.signal(signal.SIGTERM)  # also while it waits on a stalled Redis
    assert worker.exit_code() == 0
    assert len(deadline_fired(runtime, episode_id)) == 1, "fired exactly once"


# ---------------------------------------------------------------- Redis cut, connections killed

def test_the_worker_comes_back_after_redis_is_cut_and_its_connections_killed(runtime, people, workers, proxy,
                                                                           redis_connection):
    worker = workers(proxy.url)
    eventually(lambda: redis_connection.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    first = queued_message(runtime, redis_connection, "before-the-cut")
    eventually(lambda: sent_by_rq(runtime, redis_connection, first), "rq to deliver", worker=worker)

    proxy.cut()
    # It noticed: rq's worker reconnects by itself, or ours starts a fresh one.
    worker.wait_for_log("could not connect to Redis", "starting a fresh one")
    proxy.restore()
    second = queued_message(runtime, redis_connection, "after-the-cut")
    eventually(lambda: sent_by_rq(runtime, redis_connection, second), "rq to deliver after the cut", 60, worker)

    redis_connection.client_kill_filter(_type="normal", skipme=True)  # every client's connection, the worker's too
    redis_connection.connection_pool.disconnect()
    third = queued_message(runtime, redis_connection, "after-client-kill")
    eventually(lambda: sent_by_rq(runtime, redis_connection, third), "rq to deliver after CLIENT KILL", 60, worker)
    redis_connection.delete(worker.heartbeat_key)
    eventually(lambda: redis_connection.exists(worker.heartbeat_key), "the heartbeat to be written again", worker=worker)
    assert worker.process.poll() is None, "still running"
