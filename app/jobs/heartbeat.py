"""Worker heartbeats in Redis: each `ecaf worker` says it is alive every few seconds, so readiness,
/metrics and the administrators' System page can tell when workers have died.

A heartbeat is a key per worker with a short expiry; a worker that stops beating disappears. The
heartbeat comes from a thread of its own, so it also says when the worker's timer loop last got
anywhere: a worker whose timer loop hangs (a half-open database connection, say) beats on but
fires nothing, and is counted "stuck", not live.
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
# ... and when its timer loop finished a pass (or a deadline) within this long, or this many of
# its own poll intervals if that is longer.
STUCK_AFTER_SECONDS = 60
STUCK_AFTER_POLLS = 5
TIMER_FIELDS = ("timers_at", "timers_progress_at", "timer_poll")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(redis, name: str, started_at: float, **state) -> None:
    """Record that `name` is alive now (raises redis errors: the caller's loop decides what to do).

    `state` should hold `timers_at` (the last finished timer pass), `timers_progress_at` (the last
    deadline or pass finished) and `timer_poll` (seconds), from which readers judge "stuck"."""
    record = {"name": name, "started_at": started_at, "beat_at": time.time(), **state}
    redis.set(PREFIX + name, json.dumps(record), ex=EXPIRY_SECONDS)


def forget(redis, name: str) -> None:
    redis.delete(PREFIX + name)


def stuck_after(record: dict) -> float:
    """Seconds without progress of its timer loop after which this worker counts as stuck."""
    try:
        poll = float(record.get("timer_poll") or 0)
    except (TypeError, ValueError):
        poll = 0.0
    return max(float(STUCK_AFTER_SECONDS), STUCK_AFTER_POLLS * poll)


def is_stuck(record: dict, moment: float | None = None) -> bool:
    """Whether the worker's timer loop has got nowhere for too long. A worker just started has
    until `stuck_after` from its start to finish its first pass; a record that says nothing of a
    timer loop (written by something else than `ecaf worker`) is judged by its heartbeat alone."""
    if not any(key in record for key in TIMER_FIELDS):
        return False
    moment = time.time() if moment is None else moment
    marks = [record.get(key) for key in ("timers_at", "timers_progress_at", "started_at")]
    latest = max((float(mark) for mark in marks if isinstance(mark, (int, float))), default=0.0)
    return moment - latest > stuck_after(record)


def live_workers(redis, within: float = LIVE_WITHIN_SECONDS, *, stuck_too: bool = False) -> list[dict]:
    """Workers whose last heartbeat is at most `within` seconds old and whose timer loop is not
    stuck, oldest-started first. Each record says `stuck` (True or False); `stuck_too=True` also
    returns the stuck ones (e.g. for a page that names them)."""
    found = []
    moment = time.time()
    cutoff = moment - within
    for key in redis.scan_iter(match=PREFIX + "*", count=100):
        raw = redis.get(key)
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict) or float(record.get("beat_at", 0)) < cutoff:
            continue
        record["stuck"] = is_stuck(record, moment)
        if stuck_too or not record["stuck"]:
            found.append(record)
    return sorted(found, key=lambda r: r.get("started_at", 0))
