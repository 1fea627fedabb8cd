"""When a reopened draft was saved, in the words a task form shows: "3 December 2026 at 4:05pm"."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.clock import as_utc, now

LONDON = ZoneInfo("Europe/London")
SAVED_AT = "saved_at"  # the draft's key for when it was saved (UTC, ISO 8601)


def stamped(draft: dict) -> dict:
    """The draft to keep, saying when it was saved."""
    return {**draft, SAVED_AT: now().isoformat()}


def saved_on(draft: dict | None) -> str | None:
    """UK local time in GOV.UK style (12-hour, "midday" and "midnight"); None without a time."""
    text = draft.get(SAVED_AT) if isinstance(draft, dict) else None
    try:
        moment = as_utc(datetime.fromisoformat(text)).astimezone(LONDON) if isinstance(text, str) else None
    except ValueError:
        return None
    if moment is None:
        return None
    if moment.minute == 0 and moment.hour in (0, 12):
        clock = "midnight" if moment.hour == 0 else "midday"
    else:
        clock = f"{moment.hour % 12 or 12}:{moment.minute:02d}{'am' if moment.hour < 12 else 'pm'}"
    return f"{moment.day} {moment:%B %Y} at {clock}"
