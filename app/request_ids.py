"""The request id: one per web request or background job, carried into log lines, audit rows and
outbox messages, so an operator can follow one action through every record it left."""
from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_current: ContextVar[str | None] = ContextVar("ecaf_request_id", default=None)
# An id from a trusted proxy (X-Request-Id) is kept only if it is this plain: it lands in logs and rows.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_id(prefix: str = "") -> str:
    return f"{prefix}{secrets.token_hex(8)}"


def acceptable(candidate: str | None) -> str | None:
    return candidate if candidate and _ACCEPTABLE.fullmatch(candidate) else None  # "$" would let "\n" through


def current() -> str | None:
    """The id of the request or job this code runs for, or None outside one."""
    return _current.get()


@contextmanager
def bound(request_id: str) -> Iterator[str]:
    """Run a block (a background job, a sweep) under a request id."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


def bind(request_id: str):
    """Set the id for the rest of this context (a web request); returns the token to reset it."""
    return _current.set(request_id)


def reset(token) -> None:
    _current.reset(token)
