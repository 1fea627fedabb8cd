"""A server process a benchmark starts and measures: `ecaf serve` on a free loopback port, and the
CPU time of processes read from /proc (steady on a busy machine, where wall time is not)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from app.config import PROJECT_ROOT

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_times(chosen) -> dict[int, float]:
    """utime + stime, from /proc, of each process alive now for which chosen(pid, ppid, cmdline) holds."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        if chosen(pid, int(fields[1]), command):
            found[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at the second (a process that
    ended between them is not counted: PostgreSQL sessions the pool closed, a worker that restarted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Server:
    """`ecaf serve` started as its own process, answering on a free loopback port."""

    def __init__(self, command: list[str], env: dict, log: Path):
        self.port = free_port()
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        limit = time.monotonic() + 120
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > limit:
                self.stop()
                raise SystemExit(f"ecaf serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url("/healthz"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu(self) -> dict[int, float]:
        """The gunicorn master's and its workers' CPU seconds."""
        master = self.process.pid
        return cpu_times(lambda pid, ppid, _: master in (pid, ppid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
