"""A posted form read back as JSON (`parse_form`), and repeating rows added or removed without JavaScript."""
from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Mapping

from app.forms import schema_reading as read
from app.forms.schema_reading import DATE_PARTS, MONTH_NAMES

MAX_NUMBER_LENGTH = 100  # characters of a typed number, once commas and spaces are taken out
# The request form's evidence file: sent with the form, kept by the attachments (app/web/attachments.py).
EVIDENCE_FIELD = "evidence_file"
IGNORED_NAMES = frozenset({"csrf_token", "action", EVIDENCE_FIELD})
_MISSING = object()
_MONTHS = {name.lower(): n for n, name in enumerate(MONTH_NAMES, 1)} | {
    name[:3].lower(): n for n, name in enumerate(MONTH_NAMES, 1)}


def _post(form: Any) -> dict[str, list[str]]:
    """werkzeug MultiDict or a plain mapping (name -> str or list of str) as name -> list of str."""
    if hasattr(form, "getlist"):
        return {key: [str(v) for v in form.getlist(key)] for key in form.keys()}
    return {key: [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            for key, value in form.items()}


class _Reader:
    def __init__(self, post: dict[str, list[str]], keep_blank_rows: bool = False):
        self.post = post
        self.keep_blank_rows = keep_blank_rows
        self.problems: list[dict] = []
        self.seen: set[str] = set()

    def first(self, name: str) -> str | None:
        self.seen.add(name)
        values = self.post.get(name)
        return values[0] if values else None

    def problem(self, path: str, message: str) -> None:
        self.problems.append({"field": path, "message": message})

    def object(self, schema: dict, ui: dict, name: str, path: str) -> tuple[dict, dict]:
        data, raw = {}, {}
        for prop, sub, sub_ui in read.properties(schema, ui):
            if read.read_only(sub, sub_ui):
                continue  # set by the system; anything posted for it is ignored
            value, typed = self.value(sub, sub_ui, read.label(sub, prop), read.join(name, prop), read.join(path, prop))
            raw[prop] = typed
            if value is not _MISSING:
                data[prop] = value
        if not self.keep_blank_rows:  # an "Add another" keeps everything typed, whatever is chosen
            self.drop_unchosen(schema, ui, path, data, raw)
        return data, raw

    def drop_unchosen(self, schema: dict, ui: dict, path: str, data: dict, raw: dict) -> None:
        """Follow-up questions whose answer was not chosen are ignored: not stored, not checked.
        Without JavaScript they were on show, and may have been typed in before the answer changed."""
        for prop, (question, answer) in read.follow_ups(schema, ui).items():
            if read.chosen(raw.get(question), answer):
                continue
            data.pop(prop, None)
            raw.pop(prop, None)
            where = read.join(path, prop)
            self.problems = [p for p in self.problems
                             if p["field"] != where and not p["field"].startswith(where + ".")]

    def value(self, schema: dict, ui: dict, label: str, name: str, path: str) -> tuple[Any, Any]:
        widget = read.widget(schema, ui)
        if widget == "group":
            data, raw = self.object(schema, ui, name, path)
            return (data or _MISSING), raw
        if widget == "rows":
            return self.rows(schema, ui, name, path)
        if widget == "checkboxes":
            return self.checkboxes(schema, label, name, path)
        if widget == "date":
            return self.date(label, name, path)
        if widget == "person":
            return self.person(ui, label, name, path)
        typed = self.first(name)
        if typed is None:
            return _MISSING, ""
        text = typed.replace("\r\n", "\n").strip()
        if not text:
            return _MISSING, typed
        if widget == "checkbox":
            if text != "true":
                self.problem(path, f"Select ‘{label}’ or leave it unticked")
                return _MISSING, typed
            return True, typed
        if widget in ("radios", "select"):
            choices = {read.as_text(v): v for v, _ in read.options(schema, widget)}
            if text not in choices:
                self.problem(path, f"Select {read.lower_first(label)} from the list")
                return _MISSING, typed
            return choices[text], typed
        if widget == "number":
            return self.number(read.json_type(schema), label, text, path), typed
        return text, typed

    def number(self, kind: str, label: str, text: str, path: str) -> Any:
        cleaned = re.sub(r"[,\s]", "", text)  # "1,000" and "1 000" are fine
        # int() raises at 4,300 digits, and the pattern below takes quadratic time on a long run of them
        if len(cleaned) > MAX_NUMBER_LENGTH:
            self.problem(path, f"{label} must be a number")
            return _MISSING
        if kind == "integer":
            if re.fullmatch(r"[-+]?[0-9]+", cleaned):
                return int(cleaned)
            self.problem(path, f"{label} must be a whole number")
            return _MISSING
        if re.fullmatch(r"[-+]?[0-9]+", cleaned):
            return int(cleaned)
        if re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", cleaned) \
                and math.isfinite(float(cleaned)):  # 1e400 would be stored as infinity
            return float(cleaned)
        self.problem(path, f"{label} must be a number")
        return _MISSING

    def date(self, label: str, name: str, path: str) -> tuple[Any, dict]:
        typed = {part: self.first(f"{name}.{part}") or "" for part in DATE_PARTS}
        parts = {part: value.strip() for part, value in typed.items()}
        if not any(parts.values()):
            return _MISSING, typed
        missing = [part for part in DATE_PARTS if not parts[part]]
        if missing:
            self.problem(path, f"{label} must include a {' and '.join(missing)}")
            return _MISSING, typed
        month = _MONTHS.get(parts["month"].lower(), parts["month"])
        try:
            if not all(re.fullmatch(r"[0-9]+", str(v)) for v in (parts["day"], month, parts["year"])):
                raise ValueError
            if len(parts["year"]) != 4:
                raise ValueError
            return date(int(parts["year"]), int(month), int(parts["day"])).isoformat(), typed
        except ValueError:
            self.problem(path, f"{label} must be a real date")
            return _MISSING, typed

    def person(self, ui: dict, label: str, name: str, path: str) -> tuple[Any, dict]:
        """Someone offered (their email is the answer), or "Someone else" with the email typed."""
        typed = {"choice": self.first(name) or "", "other": self.first(name + ".other") or ""}
        choice = typed["choice"].strip()
        if choice == read.OTHER_PERSON:
            return (typed["other"].strip() or _MISSING), typed
        if not choice:
            return _MISSING, typed
        if choice not in {p["value"] for p in read.people(ui)}:
            self.problem(path, f"Select {read.lower_first(label)} from the list")
            return _MISSING, typed
        return choice, typed

    def checkboxes(self, schema: dict, label: str, name: str, path: str) -> tuple[Any, list]:
        self.seen.add(name)
        typed = [v for v in self.post.get(name, [])]
        choices = {read.as_text(v): v for v, _ in read.options(schema, "checkboxes")}
        values = []
        for text in dict.fromkeys(v for v in typed if v.strip()):
            if text in choices:
                values.append(choices[text])
            else:
                self.problem(path, f"Select {read.lower_first(label)} from the list")
        return (values or _MISSING), typed

    def rows(self, schema: dict, ui: dict, name: str, path: str) -> tuple[Any, list]:
        """Posted rows in index order, renumbered; entirely blank rows are dropped."""
        items, items_ui = schema.get("items") or {}, read.ui_at(ui, "items")
        pattern = re.compile(re.escape(name) + r"\.(0|[1-9][0-9]{0,8})(?:\.|$)")  # int() refuses 4,300 digits
        indices = sorted({int(m.group(1)) for key in self.post for m in [pattern.match(key)] if m})
        data, raw = [], []
        for index in indices:
            before = len(self.problems)
            row_path = read.join(path, len(data))
            if read.json_type(items) == "object":
                value, typed = self.object(items, items_ui, read.join(name, index), row_path)
                value = value or _MISSING
            else:
                value, typed = self.value(items, items_ui, read.label(items, name), read.join(name, index), row_path)
            if value is _MISSING and len(self.problems) == before:
                if self.keep_blank_rows:
                    raw.append(typed)
                continue
            # a row with only a bad value keeps its place, so problem paths match the row shown
            data.append({} if value is _MISSING and read.json_type(items) == "object" else
                        ("" if value is _MISSING else value))
            raw.append(typed)
        return (data or _MISSING), raw


def parse_form(schema: dict, ui: dict | None, form: Mapping) -> tuple[dict, dict, list[dict]]:
    """The posted form as (data typed per the schema, raw as typed, problems converting it).

    Blank answers are left out of `data`; `raw` has every field as typed, for showing back.
    Problems are {"field": dotted path, "message": text}, like the validator's errors."""
    reader = _Reader(_post(form))
    data, raw = reader.object(schema, ui or {}, "", "")
    return data, raw, reader.problems


def unexpected_names(schema: dict, ui: dict | None, form: Mapping) -> list[str]:
    """Posted names this form does not have (besides csrf_token and action): tampering or a stale page."""
    post = _post(form)
    reader = _Reader(post)
    reader.object(schema, ui or {}, "", "")
    return sorted(name for name in post if name not in reader.seen and name not in IGNORED_NAMES)


# ---------------------------------------------------------------- repeating rows without JavaScript


def is_row_action(action: Any) -> bool:
    return isinstance(action, str) and action.startswith(("add:", "remove:"))


def apply_row_action(schema: dict, ui: dict | None, form: Mapping, action: str) -> tuple[dict, dict, str]:
    """Handle an "Add another" (add:<path>) or "Remove" (remove:<path>:<index>) button.

    Returns (data, raw, focus_id) to re-render with `build_form(schema, ui, data, None, raw,
    focus=focus_id)`: everything typed is kept, blank rows included. Raises ValueError when the
    action does not name a list in this form."""
    kind, _, rest = action.partition(":")
    index = None
    if kind == "remove":
        rest, _, number = rest.rpartition(":")
        if not re.fullmatch(r"0|[1-9][0-9]*", number):
            raise ValueError(f"not a row number: {number!r}")
        index = int(number)
    elif kind != "add":
        raise ValueError(f"unknown action {action!r}")
    array = _schema_at(schema, ui or {}, rest)
    post = _post(form)
    if index is not None:  # drop the row before reading, so the rest renumber as they would on save
        prefix = f"{rest}.{index}"
        post = {k: v for k, v in post.items() if k != prefix and not k.startswith(prefix + ".")}
    reader = _Reader(post, keep_blank_rows=True)
    data, raw = reader.object(schema, ui or {}, "", "")
    if index is not None:
        return data, raw, read.html_id(rest) + "-add"
    rows = _raw_at(raw, rest)
    objects = read.json_type(array.get("items") or {}) == "object"
    if not rows:
        rows.append({} if objects else "")  # the empty row that was on show
    if array.get("maxItems") is None or len(rows) < array["maxItems"]:
        rows.append({} if objects else "")
    return data, raw, read.html_id(read.join(rest, len(rows) - 1))


def _schema_at(schema: dict, ui: dict, path: str) -> dict:
    """The array schema a button's path names (through groups and rows)."""
    node, node_ui = schema, ui
    for part in path.split(".") if path else []:
        if read.json_type(node) == "array" and re.fullmatch(r"[0-9]+", part):
            node, node_ui = node.get("items") or {}, read.ui_at(node_ui, "items")
        elif read.json_type(node) == "object" and isinstance((node.get("properties") or {}).get(part), dict):
            node, node_ui = node["properties"][part], read.ui_at(node_ui, part)
        else:
            raise ValueError(f"this form has no list {path!r}")
    if read.widget(node, node_ui) != "rows" or read.read_only(node, node_ui):
        raise ValueError(f"this form has no list {path!r}")
    return node


def _raw_at(raw: dict, path: str) -> list:
    node: Any = raw
    for part in path.split("."):
        if isinstance(node, list) and re.fullmatch(r"[0-9]+", part) and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ValueError(f"this form has no list {path!r}")
    if not isinstance(node, list):
        raise ValueError(f"this form has no list {path!r}")
    return node


def carry_read_only(schema: dict, ui: dict | None, saved: dict | None, data: dict) -> dict:
    """Copy read-only values (never posted, set by the system) from saved data into parsed data."""
    saved = saved if isinstance(saved, dict) else {}
    for name, sub, sub_ui in read.properties(schema, ui or {}):
        if name not in saved:
            continue
        if read.read_only(sub, sub_ui):
            data[name] = saved[name]
        elif read.json_type(sub) == "object" and isinstance(saved[name], dict):
            inner = carry_read_only(sub, sub_ui, saved[name], dict(data.get(name) or {}))
            if inner:
                data[name] = inner
    return data
