"""When a reopened draft was saved, in the words a task form shows: "3 December 2026 at 4:05pm"."""
from __future__ import annotations

from datetime import datetime

from app.clock import now
from app.uk_time import date_time

SAVED_AT = "saved_at"  # the draft's key for when it was saved (UTC, ISO 8601)


def stamped(draft: dict) -> dict:
    """The draft to keep, saying when it was saved."""
    return {**draft, SAVED_AT: now().isoformat()}


def saved_on(draft: dict | None) -> str | None:
    """UK local time in GOV.UK style (12-hour, "midday" and "midnight"); None without a time."""
    text = draft.get(SAVED_AT) if isinstance(draft, dict) else None
    try:
        return date_time(datetime.fromisoformat(text)) if isinstance(text, str) else None
    except ValueError:
        return None
