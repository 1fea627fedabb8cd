"""A channel that failed as a whole (no connection, no answer, 5xx, 429) is left alone for a while
in this process: the messages due in the meantime are put back to that time without a try, so a
mail server that hangs costs one timeout per wait, not one per message, and holds up no other
channel's deliveries. The first try after the wait tells whether it answers again."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.clock import now


@dataclass
class _Failing:
    until: datetime
    reason: str
    failures: int
    since: datetime
    asked_to_wait: bool = False  # the receiver said how long (Retry-After): an answer elsewhere does not end it


_failing: dict[str, _Failing] = {}
_lock = threading.Lock()


def held(route: str, longest: float) -> _Failing | None:
    """The failure that holds the route, while its wait lasts. A wait longer than `longest` seconds
    from now can only mean the clock went back: it holds nothing."""
    with _lock:
        failing = _failing.get(route)
    if failing is None:
        return None
    left = (failing.until - now()).total_seconds()  # never now() + longest: `longest` may be inf
    if left <= 0 or left > longest:
        return None
    return failing


def failures(route: str) -> int:
    with _lock:
        failing = _failing.get(route)
        return failing.failures if failing else 0


def failed(route: str, reason: str, wait_seconds: float, *, asked_to_wait: bool = False) -> None:
    with _lock:
        previous = _failing.get(route)
        _failing[route] = _Failing(until=now() + timedelta(seconds=wait_seconds), reason=reason,
                                   failures=(previous.failures if previous else 0) + 1,
                                   since=previous.since if previous else now(), asked_to_wait=asked_to_wait)


def answered(route: str) -> bool:
    """The route took a message. Returns whether it had been failing."""
    with _lock:
        return _failing.pop(route, None) is not None


def forget_all() -> None:
    with _lock:
        _failing.clear()
