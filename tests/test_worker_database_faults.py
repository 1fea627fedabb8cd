"""`ecaf worker` as a real process against database faults, and stopping: it survives its
database connections being terminated, stops warmly on SIGTERM (at once on a second one), refuses
to start without Redis or on a malformed URL, saying which; and the in-process runner and the
loops under both outlive a database fault."""
from __future__ import annotations

import signal
import threading
from dataclasses import replace

import pytest
from click.testing import CliRunner

from app.cli import main
from app.jobs.dispatch import InProcessDispatcher
from app.jobs.runtime import Runtime

from .conftest import REDIS_URL
from .worker_processes import (another_child, database_url, deadline_fired, eventually, held_smtp,  # noqa: F401
                               overdue_episode, queued_message, sent_by_rq, status_of,
                               terminate_connections, workers)

pytestmark = pytest.mark.redis


# ---------------------------------------------------------------- the database goes away

def test_the_worker_survives_its_database_connections_being_terminated(runtime, people, workers, redis_connection,
                                                                      database_url):
    worker = workers(REDIS_URL)
    eventually(lambda: redis_connection.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    runtime.db.dispose()  # what is connected now is the worker's
    eventually(lambda: terminate_connections(database_url) > 0, "the worker's connections to terminate")
    episode_id = overdue_episode(runtime, people)
    eventually(lambda: deadline_fired(runtime, episode_id), "the deadline to fire after the terminations",
               worker=worker)
    terminate_connections(database_url)
    runtime.db.dispose()  # this test's own pooled connections died too; the worker's are what is tested
    message_id = queued_message(runtime, redis_connection, "after-terminate")
    eventually(lambda: sent_by_rq(runtime, redis_connection, message_id), "rq to deliver afterwards", worker=worker)
    assert worker.process.poll() is None and len(deadline_fired(runtime, episode_id)) == 1
    worker.signal(signal.SIGTERM)  # idle, waiting for a job: it stops now
    assert worker.exit_code() == 0 and not redis_connection.exists(worker.heartbeat_key)


# ---------------------------------------------------------------- stopping

def test_sigterm_lets_the_delivery_in_progress_finish_then_exits_0_and_its_heartbeat_goes(
        runtime, people, workers, redis_connection, held_smtp):
    smtp, port = held_smtp
    worker = workers(REDIS_URL, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), ECAF_CHANNEL_READ_TIMEOUT="60")
    eventually(lambda: redis_connection.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    message_id = queued_message(runtime, redis_connection, "held-then-sent")
    eventually(smtp.entered.is_set, "the delivery to start", worker=worker)
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stopping once the job and steps in progress finish")
    assert worker.process.poll() is None, "it waits for the delivery in progress"
    smtp.release.set()
    assert worker.exit_code() == 0
    assert status_of(runtime, message_id) == "sent" and len(smtp.received) == 1
    assert not redis_connection.exists(worker.heartbeat_key), "a stopped worker leaves no heartbeat behind"


def test_a_second_sigterm_stops_at_once(runtime, people, workers, redis_connection, held_smtp):
    smtp, port = held_smtp
    worker = workers(REDIS_URL, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), ECAF_CHANNEL_READ_TIMEOUT="60")
    eventually(lambda: redis_connection.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    message_id = queued_message(runtime, redis_connection, "held-forever")
    eventually(smtp.entered.is_set, "the delivery to start", worker=worker)
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stopping once the job and steps in progress finish")
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 128 + signal.SIGTERM
    assert status_of(runtime, message_id) != "sent", "nothing was recorded as sent: it is sent again later"


def test_the_worker_needs_redis_url(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    refused = CliRunner().invoke(main, ["worker"])
    assert refused.exit_code == 2 and "REDIS_URL is not set" in refused.output


# ---------------------------------------------------------------- the in-process runner

def test_the_in_process_runner_fires_deadlines_from_the_database_and_outlives_a_database_fault(
        runtime, people, database_url):
    runtime.config = replace(runtime.config, timer_poll_seconds=0.1)
    dispatcher = InProcessDispatcher(runtime, sweep_interval=3600)
    runtime.engine.dispatcher = dispatcher
    dispatcher.start()
    try:
        episode_id = overdue_episode(runtime, people)
        eventually(lambda: deadline_fired(runtime, episode_id), "the deadline to fire")
        terminate_connections(database_url)  # every pooled connection of both loops dies
        # The test's own set-up takes a pool of its own: the loops' connections, lost, are what is tested.
        setup = Runtime.build(runtime.config)
        try:
            second = overdue_episode(setup, {**people, "child": another_child(setup, people)})
        finally:
            setup.db.dispose()
        # Looked at through a pool of its own too: a connection of the loops' pool used less than a second
        # ago is not pinged before use, so the test's own read could meet one the fault killed.
        observer = Runtime.build(runtime.config)
        try:
            fired = eventually(lambda: deadline_fired(observer, second), "a deadline after the fault")
            eventually(lambda: status_of(observer, fired[0].id) == "sent", "its message, from the queue")
        finally:
            observer.db.dispose()
        assert dispatcher._timers.alive and dispatcher._deliveries.alive
    finally:
        dispatcher.stop()
    assert len(deadline_fired(runtime, episode_id)) == 1


def test_a_loop_outlives_every_error_says_so_and_backs_off_within_its_cap(caplog):
    from app.jobs.loops import Loop, backoff

    calls: list[int] = []

    def work():
        calls.append(len(calls))
        if len(calls) <= 3:
            raise ConnectionError("the database does not answer")

    loop = Loop("test loop", work, lambda: 60.0, threading.Event())
    with caplog.at_level("WARNING"):
        assert [loop.run_once() for _ in range(4)] == [False, False, False, True]
    assert loop.failures == 0 and len(calls) == 4
    assert "test loop failed: ConnectionError" in caplog.text and "failed again (3 in a row)" in caplog.text
    assert "test loop is working again after 3 failures" in caplog.text
    assert caplog.text.count("Traceback") <= 1, "the traceback once, then one line per failure"
    assert [backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    poll = Loop("poll", work, lambda: 5.0, threading.Event(), max_backoff=30)
    poll.failures = 10
    assert poll._pause() == 5, "a loop that runs every 5 s never waits longer than that after failures"


@pytest.mark.parametrize("setting, value, said", [
    ("REDIS_URL", "redis-host:6379", "REDIS_URL is not usable"),
    ("DATABASE_URL", "postgresql://ecaf:hunter2@db:notaport/ecaf", "DATABASE_URL is not usable"),
])
def test_a_worker_with_a_malformed_url_stops_at_once_saying_which(monkeypatch, setting, value, said):
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv(setting, value)
    refused = CliRunner().invoke(main, ["worker"])
    assert refused.exit_code == 2 and said in refused.output
    assert "hunter2" not in refused.output, "a URL's password is never echoed"
