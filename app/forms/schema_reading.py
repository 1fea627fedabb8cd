"""Reading a user task's JSON Schema and UI schema: which widget, label, order and choices each answer has."""
from __future__ import annotations

import re
from typing import Any, Iterator

from app.engine.forms import USER_EMAIL_FORMAT

MAX_RADIOS = 10  # longer lists of options become a select unless the UI schema asks for radios
DATE_PARTS = ("day", "month", "year")
YES_NO = [(True, "Yes"), (False, "No")]
# English month names whatever the server's locale: dates are shown as "3 March 2026", and a month
# may be typed as "March" or "mar" as well as "3".
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")


def ui_at(ui: Any, key: str) -> dict:
    value = ui.get(key) if isinstance(ui, dict) else None
    return value if isinstance(value, dict) else {}


def json_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"] and friends
        kind = next((k for k in kind if k != "null"), None)
    if kind:
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def choices(schema: dict) -> list[tuple[Any, str]] | None:
    """(JSON value, text) for an enum, written either as `enum` or as `oneOf` of `const`s."""
    if isinstance(schema.get("enum"), list):
        return [(v, str(v)) for v in schema["enum"] if v is not None]
    for key in ("oneOf", "anyOf"):
        alternatives = schema.get(key)
        if isinstance(alternatives, list) and alternatives and all(
                isinstance(a, dict) and "const" in a for a in alternatives):
            return [(a["const"], a.get("title") or str(a["const"])) for a in alternatives if a["const"] is not None]
    return None


def options(schema: dict, widget: str) -> list[tuple[Any, str]]:
    if widget == "checkboxes":
        return choices(schema.get("items") or {}) or []
    if json_type(schema) == "boolean":
        return YES_NO
    return choices(schema) or []


def widget(schema: dict, ui: dict) -> str:
    kind, asked = json_type(schema), ui.get("ui:widget")
    if kind == "object":
        return "group"
    if kind == "array":
        return "checkboxes" if choices(schema.get("items") or {}) is not None else "rows"
    listed = choices(schema)
    if listed is not None:
        if asked in ("radios", "select"):
            return asked
        return "radios" if len(listed) <= MAX_RADIOS else "select"
    if kind == "boolean":
        return asked if asked in ("radios", "select") else "checkbox"
    if asked == "date" or schema.get("format") == "date":
        return "date"
    if kind in ("integer", "number"):
        return "number"
    if asked == "textarea":
        return "textarea"
    if schema.get("format") in ("email", USER_EMAIL_FORMAT):
        return "email"
    if asked == "text":
        return "text"
    return "textarea" if (schema.get("maxLength") or 0) > 1000 else "text"


def ordered(schema: dict, ui: dict) -> list[str]:
    """Property names in `ui:order` order; unlisted ones go after (or where "*" stands)."""
    names = list(schema.get("properties") or {})
    order = ui.get("ui:order") if isinstance(ui.get("ui:order"), list) else []
    star = order.index("*") if "*" in order else len(order)
    head = list(dict.fromkeys(n for n in order[:star] if n in names))
    tail = [n for n in dict.fromkeys(order[star + 1:]) if n in names and n not in head]
    return head + [n for n in names if n not in head and n not in tail] + tail


def properties(schema: dict, ui: dict) -> Iterator[tuple[str, dict, dict]]:
    props = schema.get("properties") or {}
    for name in ordered(schema, ui):
        if isinstance(props[name], dict):
            yield name, props[name], ui_at(ui, name)


def label(schema: dict, name: str) -> str:
    return schema.get("title") or name.replace("_", " ").strip().capitalize() or name


def read_only(schema: dict, ui: dict) -> bool:
    return bool(schema.get("readOnly") or ui.get("ui:readonly"))


def lower_first(text: str) -> str:
    """Lower-case the first letter, unless the text starts with an acronym ("NHS number")."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def html_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name.replace(".", "-"))


def as_text(value: Any) -> str:
    """A JSON scalar as a form would post it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def blank(typed: Any) -> bool:
    if isinstance(typed, dict):
        return all(blank(v) for v in typed.values())
    if isinstance(typed, list):
        return all(blank(v) for v in typed)
    return typed is None or (isinstance(typed, str) and not typed.strip())
