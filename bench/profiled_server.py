"""`ecaf serve` with each web process's requests under cProfile: bench/http_completions.py --profile.

    ECAF_BENCH_PROFILE_DIR=DIR python bench/profiled_server.py serve --host HOST --port PORT

Every gunicorn worker wraps its Flask app in a profiler and writes DIR/<pid>.prof as it stops. Only
requests that start while the file DIR/on exists are profiled (the benchmark makes it for its
measured runs only: no sign-ins, no warm-up), by the CPU time of the thread serving them (waits for
the database are not counted). cProfile follows one thread, so a profiled process serves one
request at a time. This lives in bench/, not in the app: the product never profiles itself.
"""
from __future__ import annotations

import cProfile
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli import main  # noqa: E402
from app.cli_serve import WebServer  # noqa: E402

OUTPUT = Path(os.environ["ECAF_BENCH_PROFILE_DIR"])
SWITCH = OUTPUT / "on"


class ProfiledRequests:
    """A WSGI app whose requests (the response body included) run one at a time under a profiler."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.profiler = cProfile.Profile(time.thread_time)
        self.lock = threading.Lock()
        self.used = False  # a profiler that never ran writes a file pstats cannot read

    def __call__(self, environ, start_response):
        if not SWITCH.exists():
            return self.wsgi_app(environ, start_response)
        with self.lock:
            self.used = True
            self.profiler.enable()
            try:
                body = self.wsgi_app(environ, start_response)
                try:
                    return list(body)
                finally:
                    if hasattr(body, "close"):
                        body.close()
            finally:
                self.profiler.disable()


_load, _worker_exit = WebServer.load, WebServer.worker_exit


def load(self):
    flask_app = _load(self)
    flask_app.wsgi_app = ProfiledRequests(flask_app.wsgi_app)
    return flask_app


def worker_exit(self, server, worker) -> None:
    _worker_exit(self, server, worker)
    wrapped = self.flask_app.wsgi_app if self.flask_app is not None else None
    if isinstance(wrapped, ProfiledRequests) and wrapped.used:
        wrapped.profiler.dump_stats(str(OUTPUT / f"{os.getpid()}.prof"))


WebServer.load, WebServer.worker_exit = load, worker_exit

if __name__ == "__main__":
    main(prog_name="ecaf")
