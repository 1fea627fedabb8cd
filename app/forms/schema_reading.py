"""Reading a user task's JSON Schema and UI schema: which widget, label, order and choices each answer has."""
from __future__ import annotations

import re
from typing import Any, Iterator

from app.engine.forms import USER_EMAIL_FORMAT

MAX_RADIOS = 10  # longer lists of options become a select unless the UI schema asks for radios
OTHER_PERSON = "other"  # a `person` answer's "Someone else", whose email is typed in <name>.other
REVEALING = ("radios", "checkboxes", "checkbox")  # widgets whose answers can reveal follow-up questions
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
    if asked == "person" and kind == "string":
        return "person"
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


def people(ui: dict) -> list[dict]:
    """The people a `person` answer offers, put in its UI schema when the form is opened
    (`ui:people`: [{"value": email, "text": name, "hint": role and organisation}])."""
    listed = ui.get("ui:people") if isinstance(ui.get("ui:people"), list) else []
    return [{"value": p["value"], "text": p["text"], **({"hint": {"text": p["hint"]}} if p.get("hint") else {})}
            for p in listed if isinstance(p, dict) and isinstance(p.get("value"), str)
            and isinstance(p.get("text"), str) and p["value"] and p["value"] != OTHER_PERSON]


def ordered(schema: dict, ui: dict) -> list[str]:
    """Property names in `ui:order` order; unlisted ones go after (or where "*" stands)."""
    names = list(schema.get("properties") or {})
    order = ui.get("ui:order") if isinstance(ui.get("ui:order"), list) else []
    star = order.index("*") if "*" in order else len(order)
    head = list(dict.fromkeys(n for n in order[:star] if n in names))
    tail = [n for n in dict.fromkeys(order[star + 1:]) if n in names and n not in head]
    return head + [n for n in names if n not in head and n not in tail] + tail


def properties(schema: dict, ui: dict, *, hidden: bool = False) -> Iterator[tuple[str, dict, dict]]:
    """The answers in order. `ui:hidden` ones (kept in the schema for data recorded before, no
    longer asked) are left out unless `hidden`."""
    props = schema.get("properties") or {}
    for name in ordered(schema, ui):
        if isinstance(props[name], dict) and (hidden or not ui_at(ui, name).get("ui:hidden")):
            yield name, props[name], ui_at(ui, name)


def follow_ups(schema: dict, ui: dict) -> dict[str, tuple[str, str]]:
    """Questions that only apply to one answer of another, from its `ui:reveal`
    (`{"refused": ["refusal_reason"]}`): follow-up name -> (question's name, answer as posted).

    A follow-up is a sibling answer, revealed by one answer of one question: a name listed a second
    time, a question that is itself a follow-up, or an answer the question does not offer is ignored,
    so a mistaken UI schema shows the question as an ordinary one rather than hiding it."""
    found: dict[str, tuple[str, str]] = {}
    props = dict((name, sub) for name, sub, _ in properties(schema, ui))
    for name, sub, sub_ui in properties(schema, ui):
        reveal = sub_ui.get("ui:reveal")
        kind = widget(sub, sub_ui)
        if not isinstance(reveal, dict) or kind not in REVEALING or name in found or read_only(sub, sub_ui):
            continue
        offered = {"true"} if kind == "checkbox" else {as_text(v) for v, _ in options(sub, kind)}
        for answer, names in reveal.items():
            if answer not in offered or not isinstance(names, list):
                continue
            for other in names:
                if isinstance(other, str) and other in props and other != name and other not in found \
                        and not isinstance(ui_at(ui, other).get("ui:reveal"), dict):
                    found[other] = (name, answer)
    return {name: found[name] for name in props if name in found}  # in page order


def chosen(typed: Any, answer: str) -> bool:
    """Whether a question's posted answer (text, or a list for checkboxes) is `answer`."""
    if isinstance(typed, list):
        return answer in typed
    return isinstance(typed, str) and typed.strip() == answer


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
