"""What keeps a worker honest and tidy: a worker whose timer loop has got nowhere for a minute is
"stuck", not live, even while its heartbeat goes on; the housekeeping lock is a transaction's, so
a second worker skips while the first holds it and gets it as soon as that transaction ends, and
no lock outlives a sweep; and a worker removes the metrics files of processes that are gone as it
starts, and marks its own dead as it stops."""
from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import create_engine, text

from app.db import normalise_url
from app.jobs import heartbeat
from app.jobs.sweep import HOUSEKEEPING_LOCK, housekeeping

from .conftest import REDIS_URL
from .worker_processes import database_url, eventually, workers  # noqa: F401

pytestmark = pytest.mark.redis
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- stuck workers

def names(records: list[dict]) -> list[str]:
    return sorted(r["name"] for r in records)


def test_a_worker_whose_timer_loop_hangs_is_stuck_not_live_though_it_still_beats(redis_connection):
    with time_machine.travel(START, tick=False) as clock:
        began = time.time()
        for name in ("hung", "working", "slow-poll"):
            heartbeat.beat(redis_connection, name, began, timers_at=None, timer_poll=60.0 if name == "slow-poll" else 5.0)
        assert names(heartbeat.live_workers(redis_connection)) == ["hung", "slow-poll", "working"], \
            "just started: time to finish a first pass"
        clock.shift(timedelta(seconds=50))
        for name in ("working", "slow-poll"):
            heartbeat.beat(redis_connection, name, began, timers_at=time.time(), timer_poll=60.0 if name == "slow-poll"
                           else 5.0)
        clock.shift(timedelta(seconds=20))
        heartbeat.beat(redis_connection, "hung", began, timers_at=None, timer_poll=5.0)  # its heartbeat thread goes on
        heartbeat.beat(redis_connection, "working", began, timers_at=time.time() - 3, timer_poll=5.0)
        assert names(heartbeat.live_workers(redis_connection)) == ["slow-poll", "working"]
        seen = {r["name"]: r["stuck"] for r in heartbeat.live_workers(redis_connection, float("inf"), stuck_too=True)}
        assert seen == {"hung": True, "working": False, "slow-poll": False}

        clock.shift(timedelta(minutes=4))  # five polls of a minute: the slow poller is stuck too now
        for name in ("working", "slow-poll"):
            heartbeat.beat(redis_connection, name, began, timer_poll=60.0 if name == "slow-poll" else 5.0,
                           timers_at=time.time() - 301 if name == "slow-poll" else time.time(),
                           timers_progress_at=time.time() - 301)
        assert names(heartbeat.live_workers(redis_connection)) == ["working"]


def test_a_long_timer_pass_that_keeps_firing_deadlines_is_not_stuck(redis_connection):
    with time_machine.travel(START, tick=False):
        now = time.time()
        heartbeat.beat(redis_connection, "busy", now - 600, timers_at=now - 300, timers_progress_at=now - 1,
                       timer_poll=5.0)
        assert names(heartbeat.live_workers(redis_connection)) == ["busy"]


def test_a_real_worker_beats_with_its_timer_loops_progress(runtime, people, workers, redis_connection):
    worker = workers(REDIS_URL)
    record = eventually(lambda: next((r for r in heartbeat.live_workers(redis_connection)
                                      if r["name"].endswith(f":{worker.process.pid}") and r.get("timers_at")), None),
                        "a heartbeat after a timer pass", worker=worker)
    assert record["stuck"] is False and record["timer_poll"] == 0.2
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0


# ---------------------------------------------------------------- the housekeeping lock

@pytest.fixture
def other_worker(runtime):
    """A connection of another worker, in its own transaction."""
    if not runtime.db.is_postgresql:
        pytest.skip("one housekeeper at a time is PostgreSQL's advisory lock; SQLite has one writer anyway")
    engine = create_engine(normalise_url(runtime.config.database_url))
    connection = engine.connect()
    yield connection
    connection.close()
    engine.dispose()


def advisory_locks(runtime) -> int:
    with runtime.db.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                       "AND database = (SELECT oid FROM pg_database WHERE datname = "
                                       "current_database())")).scalar()


def test_one_worker_at_a_time_does_the_housekeeping_and_no_lock_outlives_it(runtime, other_worker):
    with other_worker.begin():
        assert other_worker.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                    {"key": HOUSEKEEPING_LOCK}).scalar()
        assert housekeeping(runtime) is False, "the other worker is doing it"
    assert housekeeping(runtime) is True, "its transaction ended: the lock went with it"
    assert advisory_locks(runtime) == 0, "nothing left held on a pooled connection"
    with other_worker.begin():
        assert other_worker.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                    {"key": HOUSEKEEPING_LOCK}).scalar(), "free again at once"


def test_the_housekeeping_lock_is_held_for_the_whole_housekeeping(runtime, other_worker, monkeypatch):
    from app.jobs import sweep

    seen: list[bool] = []

    def checkpoint(runtime_) -> None:  # the last part: the lock must still be held here
        with other_worker.begin():
            seen.append(other_worker.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                             {"key": HOUSEKEEPING_LOCK}).scalar())

    monkeypatch.setattr(sweep, "checkpoint_audit_trail", checkpoint)
    assert housekeeping(runtime) is True
    assert seen == [False]


# ---------------------------------------------------------------- metrics files

def a_gone_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_a_worker_removes_the_figures_of_gone_processes_and_marks_its_own_dead(runtime, workers, redis_connection,
                                                                                tmp_path):
    figures = tmp_path / "metrics"
    figures.mkdir()
    gone = a_gone_pid()
    left = [figures / f"counter_{gone}.db", figures / f"gauge_livesum_{gone}.db"]
    for path in left:
        path.write_bytes(b"")
    worker = workers(REDIS_URL, PROMETHEUS_MULTIPROC_DIR=str(figures))
    eventually(lambda: not any(path.exists() for path in left), "the gone process's figures to go", worker=worker)
    own_live_gauge = figures / f"gauge_livesum_{worker.process.pid}.db"
    own_live_gauge.write_bytes(b"")  # as a live gauge of this worker would be
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    assert not own_live_gauge.exists(), "marked dead as it stopped"
    assert "removed 2 metrics files of stopped processes" in worker.log()
