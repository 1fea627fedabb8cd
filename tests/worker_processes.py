"""What the tests of `ecaf worker` as a real process share: the worker in a subprocess (its log in
a file), PostgreSQL only, a real Redis reached directly or through a TCP proxy the test can cut
and restore (or a port that never answers), an SMTP server that holds messages, and polling for
state (never sleeping for it)."""
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
from sqlalchemy import create_engine, select, text

from app.clock import now
from app.db import normalise_url
from app.jobs import heartbeat
from app.jobs.dispatch import RqDispatcher
from app.models import OutboxMessage

from .conftest import REDIS_URL, TEST_AUDIT_KEY, TEST_SECRET_KEY, TEST_TOTP_KEY, unavailable
from .faults.proxy import TcpProxy
from .journeys import prepare

ECAF = Path(sys.executable).with_name("ecaf")
REDIS_DB = REDIS_URL.rsplit("/", 1)[1]


@pytest.fixture
def database_url(database_urls):
    """PostgreSQL only: the worker is a separate process, and its faults are PostgreSQL's."""
    if "postgresql" not in database_urls:
        unavailable(database_urls["postgresql_problem"])
    return database_urls["postgresql"]



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class RedisProxy(TcpProxy):
    """The fault test's TCP proxy in front of the test Redis db: `cut()` makes Redis unreachable,
    `restore()` listens again on the same port."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{REDIS_DB}"


@pytest.fixture
def proxy(redis_connection):
    kwargs = redis_connection.connection_pool.connection_kwargs
    proxy = RedisProxy(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)).start()
    yield proxy
    proxy.cut()


class WorkerProcess:
    """`ecaf worker` in a subprocess, its log in a file."""

    def __init__(self, tmp_path: Path, database_url: str, redis_url: str, **env: str):
        self.log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}  # only when asked
        environment = {**inherited, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                       "SECRET_KEY": TEST_SECRET_KEY, "ECAF_TOTP_KEY": TEST_TOTP_KEY, "ECAF_AUDIT_KEY": TEST_AUDIT_KEY,
                       "ECAF_TIMER_POLL": "0.2", "ECAF_SWEEP_INTERVAL": "1", "ECAF_LOG_FORMAT": "text", **env}
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
    """A message due now, with its rq job queued (the worker's delivery loop may send it first)."""
    with runtime.db.session() as session:
        message = OutboxMessage(channel="email", kind="test", recipient="someone@testshire.test", subject="Hello",
                                body="A message", idempotency_key=key, status="pending", attempts=0,
                                next_attempt_at=now(), created_at=now())
        session.add(message)
    RqDispatcher(replace(runtime.config, redis_url=REDIS_URL), redis=redis).messages_queued([message.id])
    return message.id


def sent_by_rq(runtime, redis, message_id: int) -> bool:
    """The message is sent and rq's worker ran its job: rq serves (whichever of the two sent it)."""
    from rq.job import Job

    try:
        ran = Job.fetch(f"deliver-{message_id}", connection=redis, serializer="json").get_status() == "finished"
    except Exception:  # noqa: BLE001 - not there (yet): not run
        ran = False
    return ran and status_of(runtime, message_id) == "sent"


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


def another_child(runtime, people) -> int:
    from app.models import Child

    with runtime.db.session() as session:
        child = Child(given_names="Robin", family_name="Second", home_authority_id=people["authority"],
                      created_at=now())
        session.add(child)
        session.flush()
        return child.id

