"""Starting `ecaf` as separate processes, as an operator (or systemd) would, and stopping them all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.config import PROJECT_ROOT

ECAF = str(Path(sys.executable).with_name("ecaf"))
# Settings a developer's shell or the test session may hold that must not leak into the processes.
_NOT_INHERITED = ("DATABASE_URL", "REDIS_URL", "SMTP_HOST", "SMTP_PORT", "INDEX_ENDPOINT_URL", "NOTIFY_API_KEY",
                  "PROMETHEUS_MULTIPROC_DIR", "ECAF_METRICS_DIR", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST")


def environment(settings: dict[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_command(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    """Run one `ecaf` command to completion; a failure says which and shows its output."""
    done = subprocess.run([ECAF, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"`ecaf {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class EcafProcess:
    """One long-running `ecaf` process, its output in a log file of its own."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "EcafProcess":
        log = self.log_path.open("ab")
        # Its own session (process group), so teardown also reaches what it forks (gunicorn's workers).
        self.popen = subprocess.Popen([ECAF, *self.args], env=self.env, cwd=PROJECT_ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def kill_hard(self) -> None:
        """SIGKILL to the process itself, as the kernel's OOM killer would: no chance to clean up."""
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, grace: float = 15) -> int | None:
        """SIGTERM, then SIGKILL to its whole group if it has not gone after `grace` seconds."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pid, signal.SIGKILL)  # anything of its group still there
        try:
            return self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for(what: str, check, timeout: float, every: float = 0.2, explain=lambda: ""):
    """Poll `check()` until it gives something true; fail, saying what was awaited, after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s. {explain()}")
        time.sleep(every)
