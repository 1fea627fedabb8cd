"""The date helpers process models call (iso_after, start_of_day, now_iso): timezone-aware UTC
ISO strings, read on the application's one clock."""
from __future__ import annotations

from datetime import datetime, time

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from app.clock import as_utc, now
from app.uk_time import from_uk_time

# Reviews fall due at the start of the working day, local time.
REVIEW_TIME = time(9, 0)


def iso_after(start_iso: str, duration: str) -> str:
    """Timezone-aware ISO time `duration` (ISO 8601, e.g. "P35D") after `start_iso`."""
    start = as_utc(datetime.fromisoformat(start_iso))
    parsed = TimerEventDefinition.parse_iso_duration(duration)
    return (start + TimerEventDefinition.get_timedelta_from_start(parsed, start)).isoformat()


def start_of_day(day: str) -> str:
    """09:00 UK time on the given date (YYYY-MM-DD), as an aware UTC ISO string."""
    return from_uk_time(datetime.fromisoformat(day).date(), REVIEW_TIME).isoformat()


def now_iso() -> str:
    return now().isoformat()
