"""Worker heartbeats in Redis: each `ecaf worker` says it is alive every few seconds, so readiness,
/metrics and the administrators' System page can tell when workers have died.

A heartbeat is a key per worker with a short expiry; a worker that stops beating disappears.
"""
from __future__ import annotations

import json
import os
import socket
import time

PREFIX = "ecaf:worker:"
EXPIRY_SECONDS = 90
# A worker counts as alive when it beat within this long.
LIVE_WITHIN_SECONDS = 60


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(redis, name: str, started_at: float, **state) -> None:
    """Record that `name` is alive now (raises redis errors: the caller's loop decides what to do)."""
    record = {"name": name, "started_at": started_at, "beat_at": time.time(), **state}
    redis.set(PREFIX + name, json.dumps(record), ex=EXPIRY_SECONDS)


def forget(redis, name: str) -> None:
    redis.delete(PREFIX + name)


def live_workers(redis, within: float = LIVE_WITHIN_SECONDS) -> list[dict]:
    """Workers whose last heartbeat is at most `within` seconds old, oldest-started first."""
    found = []
    cutoff = time.time() - within
    for key in redis.scan_iter(match=PREFIX + "*", count=100):
        raw = redis.get(key)
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if float(record.get("beat_at", 0)) >= cutoff:
            found.append(record)
    return sorted(found, key=lambda r: r.get("started_at", 0))
