"""Deadlines as people read them: how long is left and when, in UK time.

"due in 37 hours, on Friday 4 December at 4:05pm": the relative part tells a busy practitioner how
urgent it is, the absolute part when exactly (GOV.UK style: "4:05pm", "9am", "midday").
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask

from app.clock import as_utc, now
from app.uk_time import clock_time, local

HOURS_SHOWN_UP_TO = timedelta(hours=48)  # beyond two days, whole days read better than hours


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def span(length: timedelta) -> str:
    """A length of time, rounded down: "25 minutes", "37 hours", "12 days"."""
    minutes = max(int(length.total_seconds() // 60), 0)
    if minutes < 60:
        return _plural(max(minutes, 1), "minute")
    if length < HOURS_SHOWN_UP_TO:
        return _plural(minutes // 60, "hour")
    return _plural(length.days, "day")


def uk_time(value: datetime | None, moment: datetime | None = None) -> str:
    """"Friday 4 December at 4:05pm" in UK local time; the year is added when it is not this year."""
    if value is None:
        return ""
    when = local(value)
    this_year = local(moment or now()).year
    year = "" if when.year == this_year else f" {when.year}"
    return f"{when:%A} {when.day} {when:%B}{year} at {clock_time(when)}"


def from_now(value: datetime | None, moment: datetime | None = None) -> str:
    """"in 37 hours, on Friday 4 December at 4:05pm", or "3 hours ago, on ..." once it has passed."""
    if value is None:
        return ""
    moment = moment or now()
    left = as_utc(value) - as_utc(moment)
    relative = f"in {span(left)}" if left > timedelta(0) else f"{span(-left)} ago"
    return f"{relative}, on {uk_time(value, moment)}"


def due_in(value: datetime | None, moment: datetime | None = None) -> str:
    """"due in 37 hours", or "overdue by 3 hours" once it has passed (short enough for a tag)."""
    if value is None:
        return ""
    left = as_utc(value) - as_utc(moment or now())
    return f"due in {span(left)}" if left > timedelta(0) else f"overdue by {span(-left)}"


def deadline(value: datetime | None, moment: datetime | None = None, *, capital: bool = False) -> str:
    """"due in 37 hours, on Friday 4 December at 4:05pm", or "overdue by 3 hours (was due on ...)"."""
    if value is None:
        return ""
    moment = moment or now()
    relative = due_in(value, moment)
    text = (f"{relative} (was due on {uk_time(value, moment)})" if relative.startswith("overdue")
            else f"{relative}, on {uk_time(value, moment)}")
    return text[:1].upper() + text[1:] if capital else text


def install(app: Flask) -> None:
    app.jinja_env.filters["uk_time"] = uk_time
    app.jinja_env.filters["from_now"] = from_now
    app.jinja_env.filters["due_in"] = due_in
    app.jinja_env.filters["deadline"] = deadline
