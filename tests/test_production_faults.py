"""Run as a council would, under faults: `ecaf serve` and two `ecaf worker`s as separate processes on
PostgreSQL and Redis, a practitioner's journey over HTTP, deadlines of seconds (a test process
version), and while they come due: a worker killed with SIGKILL (and restarted, as systemd would),
the Redis db flushed, Redis unreachable for 30 seconds, every database connection terminated.
Then every deadline fired exactly once, within the sweep interval of being due or of the fault's
end; every message was delivered exactly once; no episode is in error; both workers serve again.

It prints (pytest -s) and writes to fault-report.txt in its tmp dir the timer lateness under faults.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import Redis
from sqlalchemy import func, select

from app.jobs.heartbeat import live_workers
from app.jobs.runtime import Runtime
from app.models import Episode, OutboxMessage

from .conftest import POSTGRES_URL, REDIS_URL, unavailable
from .faults.deployment import (Deployment, People, children, current_code, drop_database, fresh_database,
                                redis_behind, seed_people, terminate_connections)
from .faults.evidence import Bound, Fault, check_deliveries, deadline_problems, deadlines_of, episode_problems
from .faults.journey import Practitioner
from .faults.processes import EcafProcess, wait_for
from .faults.proxy import TcpProxy
from .faults.recorders import recording_index_endpoint, recording_smtp_server
from .faults.report import metrics_note, short, summary
from .faults.short_deadlines import Deadlines, write_short_process
from .web import PASSWORD

pytestmark = pytest.mark.redis

SWEEP_INTERVAL = 5  # ECAF_SWEEP_INTERVAL: the bound the issue sets on a deadline's lateness
TIMER_POLL = 1  # ECAF_TIMER_POLL
# Beyond the sweep interval a deadline may also need: the timer loop's next poll (1 s), one reconnect
# back-off after its database connection was terminated (a second or two) and its own step on a busy
# 2-core test machine (a second or two). Due times read from audit rows are milliseconds off.
BOUND = Bound(sweep_interval=SWEEP_INTERVAL, allowance=5, early_tolerance=0.5)
LIMITS = Deadlines(assessment=20, child_protection=10, notice=25)
OUTAGE_SECONDS = 30
RESTART_AFTER = 2  # RestartSec of the worker's systemd unit: how long the killed worker stays dead
SPACING = 3.5  # seconds between the starts of two episodes, so deadlines fall due all through the run
CONCERNS = (False, True, True, False, False, True, True, False)  # a child-protection concern, per episode
# When each fault strikes, in seconds after the first of those episodes starts: deadlines fall due
# just before and during each (the report counts them, and the test checks there are some).
KILL_AT, FLUSH_AT, OUTAGE_AT, TERMINATE_AT = 18, 26, 33, 33 + OUTAGE_SECONDS + 5


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Council:
    deployment: Deployment
    runtime: Runtime  # the test's own, on the same database and keys, to seed and to read
    people: People
    proxy: TcpProxy
    redis: Redis  # the real server, not the proxy
    mail: object
    index: object
    tmp: Path
    notes: list[str] = field(default_factory=list)  # for the report; "PROBLEM: ..." ones fail the test


@pytest.fixture
def council(tmp_path):
    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        redis.ping()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    scratch = f"{POSTGRES_URL}_faults_run"
    try:
        fresh_database(scratch)
    except Exception as exc:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}")
    with ExitStack() as cleanup:  # undone in reverse, also when the test fails: processes first, database last
        cleanup.callback(drop_database, scratch)
        cleanup.callback(redis.flushdb)
        mail, smtp_port = cleanup.enter_context(recording_smtp_server())
        index, index_url = cleanup.enter_context(recording_index_endpoint())
        real = urlsplit(REDIS_URL)
        proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 6379).start()
        cleanup.callback(proxy.stop)
        processes_dir = write_short_process(tmp_path / "processes", LIMITS)
        deployment = Deployment.prepare(tmp_path, scratch, redis_behind(proxy.port, REDIS_URL), processes_dir,
                                        smtp_port=smtp_port, index_url=index_url, sweep_interval=SWEEP_INTERVAL,
                                        timer_poll=TIMER_POLL)
        cleanup.callback(deployment.stop_all)
        deployment.migrate_and_deploy(processes_dir)
        runtime = Runtime.build(deployment.keys.config(scratch))
        cleanup.callback(runtime.db.dispose)
        people = seed_people(runtime)
        redis.flushdb()
        yield Council(deployment, runtime, people, proxy, redis, mail, index, tmp_path)


class Timeline:
    """Runs each action at its offset (seconds) from the start; one late action delays the next."""

    def __init__(self):
        self.start = time.monotonic()

    def at(self, offset: float) -> None:
        time.sleep(max(0.0, self.start + offset - time.monotonic()))


def test_every_deadline_and_message_survives_a_killed_worker_a_flushed_redis_an_outage_and_lost_connections(council):
    c, run_started = council, time.monotonic()
    web = c.deployment.start_web()
    c.deployment.wait_until_serving(web)
    workers = {"a": c.deployment.start_worker("worker-a"), "b": c.deployment.start_worker("worker-b")}
    if not _heartbeats(c, list(workers.values()), since=utcnow() - timedelta(seconds=60)):
        c.notes.append("PROBLEM: the workers never wrote a heartbeat after they started")

    # The journey: two practitioners sign in; two CAFs go as far as a submitted assessment (a notice
    # to the national index), and a third after the faults; the others stop before it, so their
    # deadlines run out on their own.
    practitioners = {name: Practitioner(c.deployment.base_url, name, PASSWORD) for name in c.people.practitioners}
    for name, practitioner in practitioners.items():
        practitioner.sign_in(lambda user_id=c.people.practitioners[name]: current_code(c.runtime, user_id))
    by_turn = [practitioners[name] for name in sorted(practitioners)]
    kids = children(3 + len(CONCERNS))
    submitted = []

    def submit_a_caf(i: int) -> None:
        practitioner, child = by_turn[i % 2], kids[len(CONCERNS) + i]
        episode_id = practitioner.start_caf(child, c.people.authority)
        practitioner.submit_assessment(practitioner.prepare(episode_id, concern=False), child, utcnow().date())
        submitted.append(episode_id)

    submit_a_caf(0)
    submit_a_caf(1)

    concerns: dict[int, bool] = {}  # the episodes whose deadlines run out: id -> child-protection concern?
    faults: list[Fault] = []

    def start_episode(i: int) -> None:
        practitioner = by_turn[i % 2]
        episode_id = practitioner.start_caf(kids[i], c.people.authority)
        practitioner.prepare(episode_id, concern=CONCERNS[i])
        concerns[episode_id] = CONCERNS[i]

    def kill_a_worker() -> None:
        began = utcnow()
        workers["b"].kill_hard()
        time.sleep(RESTART_AFTER)  # systemd's RestartSec, not a wait for a state
        workers["b"] = c.deployment.start_worker("worker-b-restarted")
        faults.append(Fault(f"worker SIGKILL (restarted after {RESTART_AFTER} s)", began, utcnow()))

    def flush_redis() -> None:
        c.redis.flushdb()
        at = utcnow()
        faults.append(Fault("Redis db flushed", at, at))

    def redis_outage() -> None:
        began, ends = utcnow(), time.monotonic() + OUTAGE_SECONDS
        c.proxy.cut()
        try:  # the fault is visible: readiness says which check fails
            status, body = _readiness(c, lambda status: status != 200, timeout=OUTAGE_SECONDS - 5)
            c.notes.append(f"/readyz during the Redis outage: {status} {short(body)}")
            if status == 200:
                c.notes.append("PROBLEM: /readyz kept answering 200 while Redis was unreachable")
        finally:
            time.sleep(max(0.0, ends - time.monotonic()))  # the outage lasts its 30 seconds, however late it began
            c.proxy.restore()
        faults.append(Fault(f"Redis unreachable ({OUTAGE_SECONDS} s)", began, utcnow()))

    def terminate_database_connections() -> None:
        at = utcnow()
        killed = terminate_connections(c.deployment.database_url)
        if killed == 0:
            c.notes.append("PROBLEM: no database connection of the servers and workers was there to terminate")
        faults.append(Fault(f"{killed} database connections terminated", at, at))

    actions = sorted([(SPACING * i, lambda i=i: start_episode(i)) for i in range(len(CONCERNS))]
                     + [(KILL_AT, kill_a_worker), (FLUSH_AT, flush_redis), (OUTAGE_AT, redis_outage),
                        (TERMINATE_AT, terminate_database_connections),
                        # After every fault the web server serves on, and its messages go out.
                        (TERMINATE_AT + 1, lambda: submit_a_caf(2))], key=lambda action: action[0])
    timeline = Timeline()
    for offset, action in actions:
        timeline.at(offset)
        action()

    # Deadlines then run out on their own: wait for the last (every such episode deleted after its
    # notice) and for every message to be out, or stop waiting and report what is missing.
    _settle(c, concerns, timeout=LIMITS.notice + BOUND.limit.total_seconds() + 60)
    after_faults = max(f.ended for f in faults)
    beating = _heartbeats(c, [workers["a"], workers["b"]], since=after_faults)
    ready = _readiness(c, lambda status: status == 200, timeout=30)
    c.notes.append(metrics_note(c.deployment.base_url))

    problems = [note.removeprefix("PROBLEM: ") for note in c.notes if note.startswith("PROBLEM: ")]
    for name, process in (("web server", web), ("worker a", workers["a"]), ("restarted worker b", workers["b"])):
        if not process.running():
            problems.append(f"the {name} exited with status {process.exit_code()}:\n{process.log_tail()}")
    if not beating:
        problems.append("the two workers' heartbeats were not both live after the last fault: "
                        f"{[(w['name'], w['beat_at']) for w in live_workers(c.redis)]}")
    if ready[0] != 200:
        problems.append(f"/readyz did not answer 200 after the faults: {ready[0]} {short(ready[1])}")
    with c.runtime.db.session() as session:
        deadlines = deadlines_of(session, concerns, LIMITS)
        deliveries = check_deliveries(session, list(c.mail.received), list(c.index.received))
        problems += deliveries.problems
        problems += deadline_problems(deadlines, faults, BOUND)
        problems += episode_problems(session, concerns, submitted, c.people.admin_email)

    report = summary(deadlines, faults, BOUND, deliveries,
                     {"emails": len(c.mail.received), "index notices": len(c.index.received)}, c.notes,
                     TIMER_POLL, time.monotonic() - run_started)
    (c.tmp / "fault-report.txt").write_text(report + ("\n\nPROBLEMS:\n" + "\n".join(problems) if problems else ""))
    print("\n" + report)
    assert not problems, "\n".join(problems)


def _settle(c: Council, concerns: dict[int, bool], timeout: float) -> bool:
    def settled():
        with c.runtime.db.session() as session:
            waiting = session.scalar(select(func.count()).select_from(Episode).where(
                Episode.id.in_(list(concerns)), Episode.status != "deleted"))
            pending = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "sending"))))
        return waiting == 0 and pending == 0

    try:
        return wait_for("every deadline and message", settled, timeout, every=0.5)
    except AssertionError:
        return False  # the checks that follow say what is missing


def _heartbeats(c: Council, workers: list[EcafProcess], since: datetime) -> bool:
    """Whether each worker, still running, beat after `since` (read on the real Redis), within a minute."""
    pids = {str(w.pid) for w in workers}

    def beating():
        if not all(w.running() for w in workers):
            raise AssertionError("a worker exited")  # reported with its log by the caller's checks
        fresh = {w["name"].rsplit(":", 1)[-1] for w in live_workers(c.redis) if w["beat_at"] >= since.timestamp()}
        return pids <= fresh

    try:
        return wait_for("both workers' heartbeats", beating, 60, every=0.5)
    except AssertionError:
        return False


def _readiness(c: Council, wanted, timeout: float) -> tuple[int, str]:
    """/readyz until its status is `wanted`, or its last answer after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = c.deployment.readiness()
        if wanted(status) or time.monotonic() > deadline:
            return status, body
        time.sleep(0.5)
