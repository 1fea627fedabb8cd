"""The helpers a process expression may call (len, min, round, iso_after ...), each taking the
running evaluation first so that it can fail with a message and pay for its work."""
from __future__ import annotations

import math
from decimal import Decimal

from . import process_dates
from .expressions import MAX_INT_BITS

NUMBERS = (int, float, Decimal)
MAX_NUMBER_TEXT = 100


class ExpressionFailed(Exception):
    """The expression is allowed but could not be worked out with this data."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.message, self.line = message, line


def kind_of(value) -> str:
    names = {dict: "a dict", list: "a list", tuple: "a list", str: "text", bool: "True/False", type(None): "None"}
    return names.get(type(value), "a number" if isinstance(value, NUMBERS) else f"a {type(value).__name__}")


def _collection(run, args: tuple, name: str) -> list:
    items = args[0] if len(args) == 1 else args
    if not isinstance(items, (list, tuple)) or not items:
        run.fail(f"{name} takes a non-empty list or several values")
    run.measure(items)
    return list(items)


def _min(run, *args):
    return min(_collection(run, args, "min"))


def _max(run, *args):
    return max(_collection(run, args, "max"))


def _sum(run, items, start=0):
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, NUMBERS) for i in (*items, start)):
        run.fail("sum takes a list of numbers")
    run.tick(len(items))
    return sum(items, start)


def _round(run, number, digits=None):
    if not isinstance(number, NUMBERS) or digits is not None and not (isinstance(digits, int) and abs(digits) <= 100):
        run.fail("round takes a number and, optionally, a number of digits up to 100")
    if digits is None:
        _whole_number_fits(run, number)
    return round(number, digits)


def _whole_number_fits(run, number) -> None:
    """Refuse before converting: turning 1e999999 into a whole number is itself the cost."""
    if isinstance(number, Decimal) and (not number.is_finite() or number.adjusted() > MAX_INT_BITS * 3 // 10):
        run.fail("the number is too large")
    if isinstance(number, float) and (not math.isfinite(number) or abs(number) >= 2.0 ** MAX_INT_BITS):
        run.fail("the number is too large")


def _abs(run, number):
    if not isinstance(number, NUMBERS):
        run.fail("abs takes a number")
    return abs(number)


def _len(run, value):
    if not isinstance(value, (str, list, tuple, dict)):
        run.fail(f"len takes text, a list or a dict, not {kind_of(value)}")
    return len(value)


def _number_text(run, value, name: str):
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT:
            run.fail(f"{name} takes text of at most {MAX_NUMBER_TEXT} characters")
        return value.strip()
    if not isinstance(value, NUMBERS):
        run.fail(f"{name} takes a number or text, not {kind_of(value)}")
    return value


def _int(run, value=0):
    value = _number_text(run, value, "int")
    _whole_number_fits(run, value)
    return int(value)


def _float(run, value=0.0):
    return float(_number_text(run, value, "float"))


def _text_arguments(run, name: str, *values) -> None:
    if not all(isinstance(v, str) and len(v) <= MAX_NUMBER_TEXT for v in values):
        run.fail(f"{name} takes texts such as \"2026-01-31\" or \"P35D\"")


def _iso_after(run, start, duration):
    _text_arguments(run, "iso_after", start, duration)
    try:
        return process_dates.iso_after(start, duration)
    except Exception:  # noqa: BLE001 - SpiffWorkflow's duration parser raises a bare Exception
        run.fail(f"iso_after needs an ISO time and an ISO 8601 duration, not {start!r} and {duration!r}")


def _start_of_day(run, day):
    _text_arguments(run, "start_of_day", day)
    try:
        return process_dates.start_of_day(day)
    except Exception:  # noqa: BLE001 - a date that does not exist, or out of range
        run.fail(f"start_of_day needs a date such as \"2026-01-31\", not {day!r}")


HELPERS = {
    "len": _len, "min": _min, "max": _max, "sum": _sum, "round": _round, "abs": _abs,
    "str": lambda run, value="": run.text(value), "int": _int, "float": _float,
    "bool": lambda run, value=False: bool(value),
    "iso_after": _iso_after, "start_of_day": _start_of_day, "now_iso": lambda run: process_dates.now_iso(),
}
