"""`ecaf worker` as a real process on PostgreSQL and Redis: it fires deadlines with Redis out of
reach, comes back by itself after Redis is cut or its connections are killed, survives its
database connections being terminated, and stops warmly on SIGTERM (at once on a second one).
Redis is reached through a TCP proxy the test can cut and restore."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from app.cli import main
from app.clock import now
from app.db import normalise_url
from app.jobs import heartbeat
from app.jobs.dispatch import InProcessDispatcher, RqDispatcher
from app.models import Episode, OutboxMessage

from .conftest import REDIS_URL, TEST_AUDIT_KEY, TEST_SECRET_KEY, TEST_TOTP_KEY, unavailable
from .journeys import prepare

pytestmark = pytest.mark.redis
ECAF = Path(sys.executable).with_name("ecaf")
REDIS_DB = REDIS_URL.rsplit("/", 1)[1]


@pytest.fixture
def database_url(database_urls):
    """PostgreSQL only: the worker is a separate process, and its faults are PostgreSQL's."""
    if "postgresql" not in database_urls:
        unavailable(database_urls["postgresql_problem"])
    return database_urls["postgresql"]


@pytest.fixture
def redis_direct():
    from redis import Redis

    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        connection.ping()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    connection.flushdb()
    yield connection
    connection.flushdb()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the real Redis. `cut()` closes every connection and refuses
    new ones (Redis unreachable); `restore()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{REDIS_DB}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if self._acceptor is not None:
            self._acceptor.join()  # its last accept is over: the port is free again
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
                upstream.settimeout(None)
                client.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(sink)


@contextmanager
def silent_port():
    """A loopback port that accepts connections and never answers (a stalled Redis). Yields it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        _close(listener)
        for connection in held:
            connection.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def proxy(redis_direct):
    kwargs = redis_direct.connection_pool.connection_kwargs
    proxy = TcpProxy((kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)))
    proxy.restore()
    yield proxy
    proxy.cut()


class WorkerProcess:
    """`ecaf worker` in a subprocess, its log in a file."""

    def __init__(self, tmp_path: Path, database_url: str, redis_url: str, **env: str):
        self.log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
        environment = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                       "SECRET_KEY": TEST_SECRET_KEY, "ECAF_TOTP_KEY": TEST_TOTP_KEY, "ECAF_AUDIT_KEY": TEST_AUDIT_KEY,
                       "ECAF_TIMER_POLL": "0.2", "ECAF_SWEEP_INTERVAL": "1", "ECAF_LOG_FORMAT": "text", **env}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([str(ECAF), "worker"], env=environment, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])

    @property
    def heartbeat_key(self) -> str:
        return heartbeat.PREFIX + f"{socket.gethostname()}:{self.process.pid}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, *words: str, timeout: float = 30) -> None:
        """Until the log holds any of `words`."""
        eventually(lambda: any(w in self.log() for w in words), f"the worker to log {words!r}", timeout, self)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def exit_code(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def eventually(check, what: str, timeout: float = 30, worker: WorkerProcess | None = None):
    """Poll `check` until it is truthy (returns it); fail, saying what was awaited, at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) while waiting for {what}:\n"
                        f"{worker.log()[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{worker.log()[-3000:]}" if worker else ""))


@pytest.fixture
def workers(tmp_path, database_url):
    started: list[WorkerProcess] = []

    def start(redis_url: str, **env) -> WorkerProcess:
        worker = WorkerProcess(tmp_path, database_url, redis_url, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def overdue_episode(runtime, people) -> int:
    """An episode whose 35-day deadline passed yesterday."""
    with time_machine.travel(now() - timedelta(days=36), tick=False):
        return prepare(runtime, people)


def deadline_fired(runtime, episode_id) -> list[OutboxMessage]:
    with runtime.db.session() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.episode_id == episode_id,
                                                                OutboxMessage.kind == "overdue_alert")))


def queued_message(runtime, redis, key: str) -> int:
    """A message only an rq job can send now: its row's own next try is a day away."""
    with runtime.db.session() as session:
        message = OutboxMessage(channel="email", kind="test", recipient="someone@testshire.test", subject="Hello",
                                body="A message", idempotency_key=key, status="pending", attempts=0,
                                next_attempt_at=now() + timedelta(days=1), created_at=now())
        session.add(message)
    RqDispatcher(replace(runtime.config, redis_url=REDIS_URL), redis=redis).messages_queued([message.id])
    return message.id


def status_of(runtime, message_id: int) -> str:
    with runtime.db.session() as session:
        return session.get(OutboxMessage, message_id).status


def terminate_connections(database_url: str) -> int:
    engine = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        ended = connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    engine.dispose()
    return ended


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
                                                                           redis_direct):
    worker = workers(proxy.url)
    eventually(lambda: redis_direct.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    first = queued_message(runtime, redis_direct, "before-the-cut")
    eventually(lambda: status_of(runtime, first) == "sent", "rq to deliver", worker=worker)

    proxy.cut()
    # It noticed: rq's worker reconnects by itself, or ours starts a fresh one.
    worker.wait_for_log("could not connect to Redis", "starting a fresh one")
    proxy.restore()
    second = queued_message(runtime, redis_direct, "after-the-cut")
    eventually(lambda: status_of(runtime, second) == "sent", "rq to deliver after the cut", 60, worker)

    redis_direct.client_kill_filter(_type="normal", skipme=True)  # every client's connection, the worker's too
    redis_direct.connection_pool.disconnect()
    third = queued_message(runtime, redis_direct, "after-client-kill")
    eventually(lambda: status_of(runtime, third) == "sent", "rq to deliver after CLIENT KILL", 60, worker)
    redis_direct.delete(worker.heartbeat_key)
    eventually(lambda: redis_direct.exists(worker.heartbeat_key), "the heartbeat to be written again", worker=worker)
    assert worker.process.poll() is None, "still running"


# ---------------------------------------------------------------- the database goes away

def test_the_worker_survives_its_database_connections_being_terminated(runtime, people, workers, redis_direct,
                                                                      database_url):
    worker = workers(REDIS_URL)
    eventually(lambda: redis_direct.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    runtime.db.dispose()  # what is connected now is the worker's
    eventually(lambda: terminate_connections(database_url) > 0, "the worker's connections to terminate")
    episode_id = overdue_episode(runtime, people)
    eventually(lambda: deadline_fired(runtime, episode_id), "the deadline to fire after the terminations",
               worker=worker)
    terminate_connections(database_url)
    message_id = queued_message(runtime, redis_direct, "after-terminate")
    eventually(lambda: status_of(runtime, message_id) == "sent", "rq to deliver afterwards", worker=worker)
    assert worker.process.poll() is None and len(deadline_fired(runtime, episode_id)) == 1
    worker.signal(signal.SIGTERM)  # idle, waiting for a job: it stops now
    assert worker.exit_code() == 0 and not redis_direct.exists(worker.heartbeat_key)


# ---------------------------------------------------------------- stopping

class HeldSMTP:
    """An SMTP server that holds each message until the test lets it through."""

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()
        self.received: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.entered.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        self.received.append(envelope.content.decode())
        return "250 OK"


@pytest.fixture
def held_smtp():
    handler = HeldSMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    handler.release.set()
    controller.stop()


def test_sigterm_lets_the_delivery_in_progress_finish_then_exits_0_and_its_heartbeat_goes(
        runtime, people, workers, redis_direct, held_smtp):
    smtp, port = held_smtp
    worker = workers(REDIS_URL, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), ECAF_CHANNEL_READ_TIMEOUT="60")
    eventually(lambda: redis_direct.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    message_id = queued_message(runtime, redis_direct, "held-then-sent")
    eventually(smtp.entered.is_set, "the delivery to start", worker=worker)
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stopping once the job and steps in progress finish")
    assert worker.process.poll() is None, "it waits for the delivery in progress"
    smtp.release.set()
    assert worker.exit_code() == 0
    assert status_of(runtime, message_id) == "sent" and len(smtp.received) == 1
    assert not redis_direct.exists(worker.heartbeat_key), "a stopped worker leaves no heartbeat behind"


def test_a_second_sigterm_stops_at_once(runtime, people, workers, redis_direct, held_smtp):
    smtp, port = held_smtp
    worker = workers(REDIS_URL, SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), ECAF_CHANNEL_READ_TIMEOUT="60")
    eventually(lambda: redis_direct.exists(worker.heartbeat_key), "a heartbeat", worker=worker)
    message_id = queued_message(runtime, redis_direct, "held-forever")
    eventually(smtp.entered.is_set, "the delivery to start", worker=worker)
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stopping once the job and steps in progress finish")
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 128 + signal.SIGTERM
    assert status_of(runtime, message_id) == "pending", "nothing was recorded as sent: the sweep sends it later"


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
        second = overdue_episode(runtime, {**people, "child": _another_child(runtime, people)})
        fired = eventually(lambda: deadline_fired(runtime, second), "a deadline after the fault")
        eventually(lambda: status_of(runtime, fired[0].id) == "sent", "its message, from the queue")
        assert dispatcher._timers.alive and dispatcher._deliveries.alive
    finally:
        dispatcher.stop()
    assert len(deadline_fired(runtime, episode_id)) == 1


def _another_child(runtime, people) -> int:
    from app.models import Child

    with runtime.db.session() as session:
        child = Child(given_names="Robin", family_name="Second", home_authority_id=people["authority"],
                      created_at=now())
        session.add(child)
        session.flush()
        return child.id


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
