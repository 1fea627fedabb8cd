"""The NHS number: the consistent identifier the Children Act 2004 (s.16LC) asks for on a child's record.

Ten digits, the last a modulus 11 check digit (weights 10 to 2 on the first nine; 11 minus the sum's
remainder, 11 read as 0, 10 never issued). Kept as the ten digits, shown as 3-3-4 ("943 476 5919"),
accepted typed with spaces or dashes. When it is missing the record says which of the Act's two
exceptions applies.
"""
from __future__ import annotations

import re

from sqlalchemy import or_, true

# The Act's exceptions (s.16LC(3)): the only reasons a child's record may go without the number.
MISSING_REASONS = {
    "not_known": "Not known, and finding it would cause unreasonable delay",
    "detrimental": "Including it would be detrimental to the child",
}
_SEPARATORS = re.compile(r"[\s\-]+")


def digits(typed: str | None) -> str:
    """The number without the spaces or dashes it may be typed with ("" when nothing was typed)."""
    return _SEPARATORS.sub("", typed or "")


def check_digit(first_nine: str) -> int | None:
    """The check digit the first nine digits call for, or None when they call for 10 (never issued)."""
    total = sum(int(d) * weight for d, weight in zip(first_nine, range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def problem(typed: str | None) -> str | None:
    """What is wrong with a typed NHS number, as a GOV.UK error message; None when it is a real one."""
    number = digits(typed)
    if not number:
        return "Enter the NHS number"
    if not number.isdigit() or not number.isascii():
        return "NHS number must only include numbers 0 to 9, spaces and dashes"
    if len(number) != 10:
        return "NHS number must be 10 digits, like 943 476 5919"
    if check_digit(number[:9]) != int(number[9]):
        return "Enter a real NHS number: check it has been typed correctly"
    return None


def valid(number: str | None) -> bool:
    return bool(number) and problem(number) is None


def formatted(number: str | None) -> str:
    """3-3-4, as the NHS shows it: "943 476 5919"."""
    if not number or len(number) != 10:
        return number or ""
    return f"{number[:3]} {number[3:6]} {number[6:]}"


# ---------------------------------------------------------------- matching (one rule for every search)

def compare(asked: str | None, held: str | None) -> str | None:
    """"same" (the child asked about, whatever the other details), "differs" (another child), or None when
    either side has no number and the other details decide."""
    if not asked or not held:
        return None
    return "same" if held == asked else "differs"


def not_another(column, asked: str | None):
    """SQL: a record that does not hold another number than the one asked about (true when none is asked)."""
    return or_(column.is_(None), column == asked) if asked else true()
