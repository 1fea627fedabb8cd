"""A fixed-window counter per key (e.g. "apply:<address>") for public forms that need no account.

It reuses the sign-in throttle table: one row per key, its count and when its window began.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.clock import as_utc, now
from app.models import SignInThrottle


def allow(session: Session, key: str, *, limit: int, window: timedelta) -> bool:
    """Count one more use of `key`; False once it has been used `limit` times in the current window."""
    row = session.get(SignInThrottle, key[:100], with_for_update=True)
    moment = now()
    if row is None:
        session.add(SignInThrottle(key=key[:100], failures=1, last_failure_at=moment))
        return True
    if as_utc(row.last_failure_at) + window <= moment:
        row.failures, row.last_failure_at = 1, moment
        return True
    if row.failures >= limit:
        return False
    row.failures += 1
    return True
