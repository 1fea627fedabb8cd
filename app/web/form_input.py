"""Reading hand-built forms: trimmed text, GOV.UK date inputs (day, month, year) and postcodes."""
from __future__ import annotations

from datetime import date

from app.clock import now

MAX_TEXT = 500


def text(form, name: str, limit: int = MAX_TEXT) -> str:
    return (form.get(name) or "").strip()[: limit * 4]


def date_parts(form, name: str) -> dict:
    return {part: (form.get(f"{name}-{part}") or "").strip()[:4] for part in ("day", "month", "year")}


def parse_date(parts: dict, label: str, *, required: bool = False, past: bool = False) -> tuple[date | None, str | None]:
    """A date from its three boxes, or a GOV.UK-style message naming what is wrong."""
    if not any(parts.values()):
        return None, (f"Enter {label}" if required else None)
    missing = [p for p in ("day", "month", "year") if not parts[p]]
    if missing:
        return None, f"{label[0].upper()}{label[1:]} must include a {' and '.join(missing)}"
    try:
        value = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except ValueError:
        return None, f"{label[0].upper()}{label[1:]} must be a real date"
    if value.year < 1900:
        return None, f"{label[0].upper()}{label[1:]} must be a real date"
    if past and value > now().date():
        return None, f"{label[0].upper()}{label[1:]} must be today or in the past"
    return value, None
