"""`ecaf serve`: the web app under gunicorn, the production server (and `make run`'s).

gunicorn runs embedded (gunicorn.app.base.BaseApplication): the settings come from the environment,
the keys are checked and the shipped process model deployed before anything listens, exactly as
`ecaf run` does. Processes are gthread workers: ECAF_WEB_PROCESSES processes of ECAF_WEB_THREADS
threads each; GUNICORN_CMD_ARGS is honoured as gunicorn's own command honours it, over eCAF's
choices. SIGHUP starts fresh processes and retires the old ones gracefully; SIGTERM stops taking
connections and lets requests in flight finish, for up to ECAF_WEB_GRACEFUL_TIMEOUT seconds.

Without REDIS_URL the background jobs run inside the web app, and they must run exactly once: the
server then has one process (threads only), and the runner starts in that process, after the fork.
With REDIS_URL they are `ecaf worker`'s, and the web app runs none.

Metrics: every process writes its figures under PROMETHEUS_MULTIPROC_DIR, which must be set before
prometheus_client is first imported. The `ecaf` command imports it on its way here, so when it was
imported without that setting, `ecaf serve` starts itself again with the setting made.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from app.config import Config

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
LOOPBACK = ("127.0.0.1", "localhost", "::1")
METRICS_SETTING = "PROMETHEUS_MULTIPROC_DIR"
# Names a metrics directory this command made for itself (and removes when it stops).
_OWN_METRICS_DIR = "ECAF_SERVE_OWN_METRICS_DIR"
_METRICS_FILE = re.compile(r"_(\d+)\.db$")


@dataclass(frozen=True)
class ServerSettings:
    bind: str
    host: str | None     # None: a unix socket
    port: int | None
    processes: int
    threads: int
    timeout: int
    graceful_timeout: int
    in_process_jobs: bool

    @property
    def url(self) -> str:
        if self.host is None:
            return self.bind
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def _whole_number(env, name: str, default: int, minimum: int = 1) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise click.UsageError(f"{name} must be a whole number of at least {minimum}, not {text!r}")
    return value


def _address(host: str | None, port: int | None, env) -> tuple[str, str | None, int | None]:
    """Where to listen: --host/--port, else ECAF_BIND (host:port or unix:PATH), else PORT, else 127.0.0.1:8000."""
    bind = (env.get("ECAF_BIND") or "").strip()
    if bind.startswith("unix:") and host is None and port is None:
        return bind, None, None
    bound_host, bound_port = DEFAULT_HOST, None
    if bind and not bind.startswith("unix:"):
        bound_host, _, text = bind.rpartition(":")
        if not bound_host or not text.isdigit():
            raise click.UsageError(f"ECAF_BIND must be HOST:PORT or unix:PATH, not {bind!r}")
        bound_host, bound_port = bound_host.strip("[]"), int(text)
    host = host or bound_host
    port = port or bound_port or _whole_number(env, "PORT", DEFAULT_PORT)
    return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}"), host, port


def server_settings(config: Config, host: str | None, port: int | None, env=None) -> ServerSettings:
    env = os.environ if env is None else env
    bind, host, port = _address(host, port, env)
    in_process_jobs = not config.redis_url
    processes = _whole_number(env, "ECAF_WEB_PROCESSES", 2)
    return ServerSettings(
        bind=bind, host=host, port=port,
        processes=1 if in_process_jobs else processes,
        threads=_whole_number(env, "ECAF_WEB_THREADS", 8),
        timeout=_whole_number(env, "ECAF_WEB_TIMEOUT", 30),
        graceful_timeout=_whole_number(env, "ECAF_WEB_GRACEFUL_TIMEOUT", 30),
        in_process_jobs=in_process_jobs)


def metrics_directory(env=None) -> tuple[Path, bool]:
    """The directory every process's figures go to, and whether this command made it (and so
    removes it when it stops): PROMETHEUS_MULTIPROC_DIR, else ECAF_METRICS_DIR (shared with the
    workers on this host), else a fresh temporary directory."""
    env = os.environ if env is None else env
    chosen = env.get(METRICS_SETTING) or env.get("ECAF_METRICS_DIR")
    if chosen:
        return Path(chosen), env.get(_OWN_METRICS_DIR) == chosen
    return Path(tempfile.mkdtemp(prefix="ecaf-metrics-")), True


def clear_dead_figures(directory: Path) -> int:
    """Remove the figure files of processes that are gone (from an earlier run): their counters would
    otherwise be added in forever. Files of live processes (workers sharing the directory) stay."""
    removed = 0
    for path in directory.glob("*.db"):
        found = _METRICS_FILE.search(path.name)
        if found and not _alive(int(found.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _multiprocess_metrics_ready() -> bool:
    """Whether prometheus_client is not imported yet, or was imported in multiprocess mode."""
    if "prometheus_client" not in sys.modules:
        return True
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def _start_again_with_metrics() -> None:
    """prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: the same command again,
    in a fresh interpreter that sees the setting from its first line."""
    if "serve" not in sys.argv[1:]:  # called from inside another program (a test's CliRunner): not its command line
        raise click.UsageError(f"set {METRICS_SETTING} before prometheus_client is imported, or run `ecaf serve`")
    script = Path(sys.argv[0])
    if script.name == "ecaf" and script.is_file() and os.access(script, os.X_OK):
        os.execv(script, sys.argv)  # the same command line in `ps` and the service manager
    os.execv(sys.executable, [sys.executable, "-c", "from app.cli import main; main(prog_name='ecaf')",
                              *sys.argv[1:]])


@click.command(help="Serve the web app under gunicorn, for production. Listens on --host/--port, else ECAF_BIND "
                    "(HOST:PORT or unix:PATH), else PORT, else 127.0.0.1:8000. ECAF_WEB_PROCESSES processes "
                    "(default 2) of ECAF_WEB_THREADS threads (default 8); ECAF_WEB_TIMEOUT, "
                    "ECAF_WEB_GRACEFUL_TIMEOUT (seconds, default 30); GUNICORN_CMD_ARGS as for gunicorn. Without "
                    "REDIS_URL: one process, which also runs the background jobs.")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000).")
def serve(host: str | None, port: int | None) -> None:
    directory, own = metrics_directory()
    try:  # before anything writes figures there, this process's next interpreter included
        directory.mkdir(parents=True, exist_ok=True)
        clear_dead_figures(directory)
    except OSError as exc:
        click.echo(f"cannot keep the metrics in {directory} ({METRICS_SETTING} or ECAF_METRICS_DIR): {exc}", err=True)
        sys.exit(2)
    os.environ[METRICS_SETTING] = str(directory)
    if own:
        os.environ[_OWN_METRICS_DIR] = str(directory)
    if not _multiprocess_metrics_ready():
        _start_again_with_metrics()
    master = os.getpid()
    try:
        _serve(host, port)
    finally:
        # gunicorn's processes leave through here too: only the one that made the directory removes it.
        if own and os.getpid() == master:
            shutil.rmtree(directory, ignore_errors=True)


def _serve(host: str | None, port: int | None) -> None:
    from app.cli import _keys_ready, deploy_shipped_model

    config = Config.from_env()
    settings = server_settings(config, host, port)
    if "ECAF_COOKIE_SECURE" not in os.environ and settings.host in LOOPBACK:
        # Plain HTTP on this machine only (`make run`); behind HTTPS in production the cookie is Secure.
        config.cookie_secure = False
        config.local_run = True  # the same test as the cookie: development keys only here
    shipped = deploy_shipped_model(config.database_url, config.processes_dir, _keys_ready(config))
    if shipped:
        click.echo(f"deployed the shipped process model as {shipped}")
    if settings.in_process_jobs:
        if (os.environ.get("ECAF_WEB_PROCESSES") or "1").strip() != "1":
            click.echo("ECAF_WEB_PROCESSES is ignored without REDIS_URL: the background jobs must run once", err=True)
        click.echo(f"no REDIS_URL: one process of {settings.threads} threads, which also runs the background jobs")
    else:
        click.echo(f"{settings.processes} processes of {settings.threads} threads; the background jobs are "
                   "`ecaf worker`'s")
    click.echo(f"eCAF is serving on {settings.url} (gunicorn)")
    WebServer(config, settings).run()


class _Log(glogging.Logger):
    """gunicorn's own lines (starts, reloads, stops, worker deaths) go through the root logger, so
    they come out in the same format as eCAF's (JSON lines in production). No access log: the app
    writes one line per request itself, without the query string (a search's name and date of birth)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


class WebServer(BaseApplication):
    def __init__(self, config: Config, settings: ServerSettings):
        self.config = config
        self.settings = settings
        self.flask_app = None
        super().__init__(prog="ecaf serve")

    def load_config(self) -> None:
        chosen = {
            "bind": [self.settings.bind], "workers": self.settings.processes, "threads": self.settings.threads,
            "worker_class": "gthread", "timeout": self.settings.timeout,
            "graceful_timeout": self.settings.graceful_timeout, "preload_app": False,
            "accesslog": None, "errorlog": "-", "logger_class": _Log,
            # Forwarded headers are ProxyFix's to trust (ECAF_PROXY_HOPS), never gunicorn's by address.
            "forwarded_allow_ips": "", "proc_name": "ecaf-web",
            "post_fork": self.post_fork, "post_worker_init": self.post_worker_init,
            "worker_exit": self.worker_exit, "child_exit": self.child_exit,
        }
        for name, value in chosen.items():
            self.cfg.set(name, value)
        # GUNICORN_CMD_ARGS, read as gunicorn's own command reads it: over what eCAF chose.
        given = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for name, value in vars(given).items():
            if value is not None and name != "args":
                self.cfg.set(name.lower(), value)
        if self.settings.in_process_jobs and self.cfg.workers != 1:
            print("GUNICORN_CMD_ARGS asks for several processes, but without REDIS_URL the background jobs run "
                  "inside the web app and must run once: serving with one", file=sys.stderr)
            self.cfg.set("workers", 1)

    def load(self):
        from app import create_app

        # Each process builds its own app, database engine and Redis client, after the fork.
        from app.web import health

        from app import heap

        self.flask_app = create_app(self.config)
        health.warm()
        heap.settle()
        return self.flask_app

    def post_fork(self, server, worker) -> None:
        if self.flask_app is not None:  # preloaded (--preload): the parent's pooled connections are not ours
            self.flask_app.extensions["ecaf"].db.engine.dispose(close=False)

    def post_worker_init(self, worker) -> None:
        if self.settings.in_process_jobs:
            dispatcher = self.flask_app.extensions["ecaf"].engine.dispatcher
            if hasattr(dispatcher, "start"):
                dispatcher.start()

    def worker_exit(self, server, worker) -> None:
        """A retiring process (SIGTERM, SIGHUP's replacement) finishes its background step and stops."""
        if self.settings.in_process_jobs and self.flask_app is not None:
            dispatcher = self.flask_app.extensions["ecaf"].engine.dispatcher
            if hasattr(dispatcher, "stop"):
                dispatcher.stop()

    def child_exit(self, server, worker) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
