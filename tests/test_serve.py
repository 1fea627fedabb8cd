"""`ecaf serve`: gunicorn as a real process on SQLite and on PostgreSQL with Redis (health, a page,
graceful SIGTERM, SIGHUP reload), its settings, figures across processes, and ProxyFix's trust."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click
import pytest
import requests
from sqlalchemy import func, select

from app import create_app, outbox
from app.cli_serve import WebServer, clear_dead_figures, server_settings
from app.config import PROJECT_ROOT, Config
from app.db import Database
from app.jobs import heartbeat
from app.migrate import upgrade
from app.models import MailboxMessage, OutboxMessage, SignInThrottle

from .conftest import REDIS_URL, TEST_AUDIT_KEY, unavailable
from .web import browser, csrf_token

ECAF = [sys.executable, "-c", "from app.cli import main; main(prog_name='ecaf')"]
# How long any one state may take to come about on a loaded machine: a limit for polling, never a timing.
PATIENCE = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def until(condition, what: str, patience: float = PATIENCE):
    """Poll `condition` until it answers something true, and return that; fail naming `what`."""
    limit = time.monotonic() + patience
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > limit:
            pytest.fail(f"{what} did not happen")
        time.sleep(0.1)


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def answer(url: str):
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


class Server:
    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process, self.port, self.log = process, port, log

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str):
        return answer(self.url(path))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> set[int]:
        return children(self.process.pid)

    def stopped(self, sig=signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return until(lambda: self.process.poll() is not None and [self.process.returncode],
                     "the server stopping")[0]


@contextmanager
def serving(tmp_path: Path, *args: str, **env: str):
    port = free_port()
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "ECAF_METRICS_DIR", "ECAF_BIND", "PORT",
                                "ECAF_WEB_PROCESSES", "GUNICORN_CMD_ARGS", "ECAF_COOKIE_SECURE")}
    environment.update(PYTHONUNBUFFERED="1", ECAF_LOG_FORMAT="json", ECAF_WEB_GRACEFUL_TIMEOUT="20", **env)
    log = tmp_path / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen([*ECAF, "serve", "--port", str(port), *args], cwd=PROJECT_ROOT, env=environment,
                                   stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    try:
        until(lambda: process.poll() is not None or (server.get("/healthz") or None),
              "the server answering /healthz")
        assert process.poll() is None, f"ecaf serve exited {process.returncode}:\n{server.output()}"
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def sqlite_database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(url)
    return url


def queue_message(url: str, key: str) -> int:
    db = Database(url, audit_key=TEST_AUDIT_KEY.encode())
    try:
        with db.session() as session:
            return outbox.queue_email(session, kind="test", recipient="someone@example.test", subject="Hello",
                                      body="A message the background jobs deliver", key=key).id
    finally:
        db.dispose()


def delivered(url: str, message_id: int) -> bool:
    db = Database(url)
    try:
        with db.session() as session:
            sent = session.get(OutboxMessage, message_id).status == "sent"
            copies = session.scalar(select(func.count()).select_from(MailboxMessage)
                                    .where(MailboxMessage.outbox_id == message_id))
        assert copies <= 1
        return sent
    finally:
        db.dispose()


def test_on_sqlite_one_process_serves_reloads_on_sighup_and_stops_gracefully_on_sigterm(tmp_path):
    url = sqlite_database(tmp_path)
    with serving(tmp_path, DATABASE_URL=url, ECAF_WEB_PROCESSES="3", ECAF_TIMER_POLL="0.5") as server:
        ready = server.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["workers"]["reason"] == "no Redis: background jobs run in the web process"
        page = server.get("/sign-in")
        assert page.status_code == 200 and "Sign in" in page.text
        # On loopback without ECAF_COOKIE_SECURE, as `make run` serves: a cookie that plain HTTP keeps.
        assert "ecaf-session" in page.headers.get("Set-Cookie", "") and "Secure" not in page.headers["Set-Cookie"]
        output = server.output()
        assert "no REDIS_URL: one process of 8 threads, which also runs the background jobs" in output
        assert "ECAF_WEB_PROCESSES is ignored without REDIS_URL" in output
        first = until(server.workers, "a worker process")
        assert len(first) == 1, "the background jobs must run in exactly one process"
        # ...and they do run there, started after the fork: a pending message goes out.
        message = queue_message(url, "serve-test-1")
        until(lambda: delivered(url, message), "the served process delivering a message")

        server.process.send_signal(signal.SIGHUP)
        replaced = until(lambda: (w := server.workers()) and not (w & first) and w, "the worker being replaced")
        assert len(replaced) == 1
        assert server.get("/readyz").status_code == 200 and server.get("/sign-in").status_code == 200
        message = queue_message(url, "serve-test-2")
        until(lambda: delivered(url, message), "the replacement process delivering a message")

        metrics_dir = _metrics_dir(server)
        assert metrics_dir.is_dir()
        assert server.stopped() == 0, server.output()
        assert "Shutting down: Master" in server.output()
        assert not metrics_dir.exists(), "the figures of a temporary directory go with the server"


def _metrics_dir(server: Server) -> Path:
    """Where the server's processes write their figures (a directory it made: none was named)."""
    worker = next(iter(server.workers()))
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    return Path(next(v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")))


@pytest.mark.redis
def test_on_postgresql_with_redis_processes_share_their_figures_and_wait_for_a_worker(tmp_path, database_urls):
    if "postgresql" not in database_urls:
        unavailable(database_urls["postgresql_problem"])
    from redis import Redis

    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        redis.flushdb()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    metrics_dir = tmp_path / "metrics"
    stale = metrics_dir / "counter_999999999.db"  # a process of an earlier run, long gone
    metrics_dir.mkdir()
    stale.write_bytes(b"")
    with serving(tmp_path, DATABASE_URL=database_urls["postgresql"], REDIS_URL=REDIS_URL, ECAF_WEB_PROCESSES="2",
                 ECAF_WEB_THREADS="2", ECAF_METRICS_DIR=str(metrics_dir)) as server:
        assert len(until(lambda: len(server.workers()) == 2 and server.workers(), "two processes"))
        assert "2 processes of 2 threads; the background jobs are `ecaf worker`'s" in server.output()
        assert not stale.exists()

        not_ready = server.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["workers"]["status"] == "failing"
        heartbeat.beat(redis, "worker-host:1", time.time())
        until(lambda: server.get("/readyz").status_code == 200, "readiness once a worker beats")
        assert server.get("/sign-in").status_code == 200

        # Each process writes its own figures to the shared directory; a scrape adds them all up.
        for _ in range(20):
            assert server.get("/healthz").status_code == 200
        written = {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("*.db")}
        assert written & server.workers() and written <= server.workers() | {server.process.pid}
        scrape = server.get("/metrics").text
        served = [line for line in scrape.splitlines()
                  if line.startswith("ecaf_http_request_seconds_count") and 'endpoint="health.liveness"' in line]
        assert served and sum(float(line.rsplit(" ", 1)[1]) for line in served) >= 20, scrape[:2000]

        assert server.stopped() == 0, server.output()
    assert metrics_dir.exists(), "a directory the operator named is kept for the workers sharing it"
    redis.flushdb()


def test_a_deployment_without_its_keys_does_not_start(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR")}
    done = subprocess.run([*ECAF, "serve", "--host", "0.0.0.0", "--port", str(free_port())], cwd=PROJECT_ROOT,
                          env={**environment, "DATABASE_URL": "postgresql://db.example/ecaf"}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "SECRET_KEY is not set" in done.stderr
    # Nor with a Notify key that names no template: every email would fail.
    notify = subprocess.run(
        [*ECAF, "serve", "--host", "0.0.0.0", "--port", str(free_port())], cwd=PROJECT_ROOT,
        env={**environment, "DATABASE_URL": "postgresql://db.example/ecaf", "SECRET_KEY": "s" * 40,
             "NOTIFY_API_KEY": "ecaf_live-0d3c7a4e-5b1f-4c9e-9a3d-2f6e8b7c1a90-6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
        capture_output=True, text=True, timeout=120)
    assert notify.returncode == 2 and "NOTIFY_EMAIL_TEMPLATE_ID" in notify.stderr, notify.stderr


def test_ecaf_run_says_it_is_the_development_server(tmp_path):
    port = free_port()
    environment = {**os.environ, "DATABASE_URL": sqlite_database(tmp_path), "PYTHONUNBUFFERED": "1"}
    environment.pop("REDIS_URL", None)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen([*ECAF, "run", "--port", str(port)], cwd=PROJECT_ROOT, env=environment,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        until(lambda: answer(f"http://127.0.0.1:{port}/healthz") or process.poll() is not None, "ecaf run answering")
        assert "(development server: use `ecaf serve` in production)" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_settings_come_from_the_environment_and_keep_in_process_jobs_single():
    config = Config(redis_url="redis://127.0.0.1:6379/1")
    chosen = server_settings(config, None, None, {"ECAF_WEB_PROCESSES": "4", "ECAF_WEB_THREADS": "16",
                                                  "ECAF_WEB_TIMEOUT": "45", "ECAF_WEB_GRACEFUL_TIMEOUT": "50"})
    assert (chosen.bind, chosen.processes, chosen.threads, chosen.timeout, chosen.graceful_timeout) == \
        ("127.0.0.1:8000", 4, 16, 45, 50)
    assert server_settings(Config(), None, None, {"ECAF_WEB_PROCESSES": "4"}).processes == 1
    assert server_settings(config, None, None, {"ECAF_BIND": "0.0.0.0:9000"}).bind == "0.0.0.0:9000"
    assert server_settings(config, None, None, {"ECAF_BIND": "[::1]:9000"}).url == "http://[::1]:9000/"
    assert server_settings(config, None, None, {"PORT": "5050"}).bind == "127.0.0.1:5050"
    assert server_settings(config, "0.0.0.0", 7000, {"ECAF_BIND": "127.0.0.1:9000"}).bind == "0.0.0.0:7000"
    socket_path = server_settings(config, None, None, {"ECAF_BIND": "unix:/run/ecaf/web.sock"})
    assert socket_path.bind == "unix:/run/ecaf/web.sock" and socket_path.host is None
    for env, named in (({"ECAF_WEB_THREADS": "0"}, "ECAF_WEB_THREADS"), ({"ECAF_WEB_TIMEOUT": "soon"},
                                                                         "ECAF_WEB_TIMEOUT"),
                       ({"ECAF_BIND": "localhost"}, "ECAF_BIND"), ({"PORT": "-1"}, "PORT")):
        with pytest.raises(click.UsageError, match=named):
            server_settings(config, None, None, env)


def test_gunicorn_cmd_args_are_honoured_but_cannot_run_the_jobs_twice(monkeypatch):
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--threads 3 --timeout 99 --workers 4 --max-requests 1000")
    with_redis = Config(redis_url="redis://127.0.0.1:6379/1")
    server = WebServer(with_redis, server_settings(with_redis, None, None, {}))
    assert (server.cfg.threads, server.cfg.timeout, server.cfg.workers, server.cfg.max_requests) == (3, 99, 4, 1000)
    assert server.cfg.worker_class_str == "gthread" and server.cfg.accesslog is None
    assert server.cfg.forwarded_allow_ips == []  # forwarded headers are ProxyFix's to trust
    alone = WebServer(Config(), server_settings(Config(), None, None, {}))
    assert alone.cfg.workers == 1 and alone.cfg.threads == 3


def test_figures_of_processes_that_are_gone_are_cleared_and_live_ones_kept(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(gone.stdout), os.getpid()
    for name in (f"counter_{dead}.db", f"histogram_{dead}.db", f"counter_{alive}.db", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert clear_dead_figures(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{alive}.db", "notes.txt"]


def _wrong_password(app, forwarded_for: str):
    client = browser(app)
    page = client.get("/sign-in").get_data(as_text=True)
    return client.client.post("/sign-in", data={"username": "nobody", "password": "wrong", "csrf_token":
                                                csrf_token(page)}, headers={"X-Forwarded-For": forwarded_for})


def _counted_addresses(runtime) -> set[str]:
    with runtime.db.session() as session:
        keys = session.scalars(select(SignInThrottle.key).where(SignInThrottle.key.like("addr:%"))).all()
    return {key.removeprefix("addr:") for key in keys}


def test_behind_one_trusted_proxy_the_throttle_counts_the_client_the_proxy_names(runtime):
    app = create_app(replace(runtime.config, proxy_hops=1))
    # The proxy appends the address it saw; what the client wrote before it is the client's own claim.
    _wrong_password(app, "203.0.113.66, 198.51.100.7")
    assert _counted_addresses(runtime) == {"198.51.100.7"}


def test_trusting_no_proxy_a_forged_forwarded_for_changes_nothing(runtime):
    app = create_app(runtime.config)
    assert runtime.config.proxy_hops == 0
    _wrong_password(app, "198.51.100.7")
    assert _counted_addresses(runtime) == {"127.0.0.1"}


def test_called_inside_another_program_it_never_replaces_that_program(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from app.cli import main

    # This test process imported prometheus_client without a metrics directory: `ecaf serve` would start
    # itself again with one, which must never replace a program that merely called it.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setenv("ECAF_METRICS_DIR", str(tmp_path / "metrics"))
    done = CliRunner().invoke(main, ["serve"])
    assert done.exit_code == 2 and "run `ecaf serve`" in done.output
