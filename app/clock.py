"""The one clock of the application: timezone-aware UTC.

SpiffWorkflow's timers read `datetime.now(timezone.utc)` too, so tests that move time with
time-machine move both together.
"""
from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Aware UTC for any datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
