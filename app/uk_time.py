"""Times as people in the UK read them: GMT or BST, GOV.UK style ("4:05pm", "9am", "midday").

Everything is stored in UTC; every page, message and effect line that a person reads says UK time
through these, so an administrator typing "9am" and a practitioner reading "due ... at 9am" agree.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from app.clock import as_utc

LONDON = ZoneInfo("Europe/London")


def local(value: datetime) -> datetime:
    return as_utc(value).astimezone(LONDON)


def clock_time(moment: datetime) -> str:
    """The time of day of a local datetime: "4:05pm", "9am", "midday", "midnight"."""
    if (moment.hour, moment.minute) == (12, 0):
        return "midday"
    if (moment.hour, moment.minute) == (0, 0):
        return "midnight"
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes}{'am' if moment.hour < 12 else 'pm'}"


def date_time(value: datetime | None) -> str:
    """"8 January 2027 at 1:48am" in UK time."""
    if value is None:
        return ""
    moment = local(value)
    return f"{moment.day} {moment:%B %Y} at {clock_time(moment)}"


def long_date(value) -> str:
    """"8 January 2027": a date, an ISO date string, or the UK day of a datetime."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = local(value).date()
    return f"{value.day} {value:%B %Y}"


def from_uk_time(day: date, at: time) -> datetime:
    """A date and time of day as people in the UK read them (GMT or BST) as aware UTC. A time the
    clocks skip in spring counts as the hour after; one they repeat in autumn as the first of the two."""
    return datetime.combine(day, at, tzinfo=LONDON).astimezone(timezone.utc)
