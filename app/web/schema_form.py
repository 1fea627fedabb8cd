"""User-task forms as GOV.UK Design System fields, and the posted form read back as JSON.

HTML names are the dotted data paths (`section_d_parents_carers.parents_carers.0.name`), so a post
maps straight back onto the JSON the schema describes and the validator's error paths name the
field they belong to. Nothing needs JavaScript: repeating rows are added and removed with submit
buttons (`apply_row_action`), and what was typed is always shown back as typed (`raw`).

Render: `build_form` -> templates/components/schema_form.html. Read back: `parse_form`.
Read-only display: `summary`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field as _default
from datetime import date
from typing import Any, Iterator, Mapping

from app.engine.forms import USER_EMAIL_FORMAT

REQUIRED_MESSAGE = "Enter this information"  # what app.engine.forms.validate says for `required`
MAX_RADIOS = 10  # longer lists of options become a select unless the UI schema asks for radios
MAX_NUMBER_LENGTH = 100  # characters of a typed number, once commas and spaces are taken out
DATE_PARTS = ("day", "month", "year")
IGNORED_NAMES = frozenset({"csrf_token", "action"})
YES_NO = [(True, "Yes"), (False, "No")]
_MISSING = object()
# English month names whatever the server's locale: dates are shown as "3 March 2026", and a month
# may be typed as "March" or "mar" as well as "3".
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
_MONTHS = {name.lower(): n for n, name in enumerate(MONTH_NAMES, 1)} | {
    name[:3].lower(): n for n, name in enumerate(MONTH_NAMES, 1)}


# ---------------------------------------------------------------- what the templates get


@dataclass(eq=False)
class Row:
    """One entry of a repeating list; iterating it gives its fields."""

    fields: list[Field]
    legend: str  # "Parent or carer 2"
    id: str
    index: int
    remove_value: str  # value of the "Remove" button: remove:<array path>:<index>
    removable: bool = True

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @property
    def legend_lower(self) -> str:
        return _lower(self.legend)


@dataclass(eq=False)
class Field:
    name: str  # HTML name; a date posts <name>.day, <name>.month and <name>.year
    id: str
    path: str  # dotted data path, the same as `name`: errors are matched on it
    label: str
    widget: str  # text textarea number email date radios checkboxes checkbox select rows group
    hint: str | None = None
    value: Any = ""  # as typed: a string, a list for checkboxes, {day, month, year} for a date
    options: list[dict] = _default(default_factory=list)  # [{"value", "text"}] for choices
    error: str | None = None
    required: bool = False
    max_length: int | None = None
    read_only: bool = False
    display: str = ""  # formatted value for a read-only field
    depth: int = 0  # nesting of groups and lists, for heading sizes
    kind: str = "string"  # JSON type behind the widget
    children: list[Field] = _default(default_factory=list)  # group
    rows: list[Row] = _default(default_factory=list)  # rows
    item_title: str = ""
    max_items: int | None = None
    scalar_items: bool = False  # a list of plain values: one input per row, no inner fieldset
    autofocus: bool = False
    add_autofocus: bool = False

    @property
    def focus_id(self) -> str:
        """The element an error summary link or autofocus should land on."""
        return self.id + "-day" if self.widget == "date" else self.id

    @property
    def parts(self) -> dict:
        return self.value if isinstance(self.value, dict) else {part: "" for part in DATE_PARTS}

    @property
    def checked(self) -> bool:
        return self.value == "true"

    @property
    def add_id(self) -> str:
        return self.id + "-add"

    @property
    def add_value(self) -> str:
        return "add:" + self.name

    @property
    def add_text(self) -> str:
        return "Add another " + _lower(self.item_title)

    @property
    def can_add(self) -> bool:
        return self.max_items is None or len(self.rows) < self.max_items

    @property
    def clearable(self) -> bool:
        """Radios cannot be unticked without JavaScript, so optional ones get a "Not answered" choice."""
        return self.widget == "radios" and not self.required

    def walk(self) -> Iterator[Field]:
        yield self
        for child in self.children:
            yield from child.walk()
        for row in self.rows:
            for child in row.fields:
                yield from child.walk()


@dataclass(eq=False)
class Form:
    title: str
    description: str | None
    fields: list[Field]
    error_list: list[dict] = _default(default_factory=list)  # [{"text", "href"}] in page order

    def walk(self) -> Iterator[Field]:
        for item in self.fields:
            yield from item.walk()

    def field(self, path: str) -> Field | None:
        return next((f for f in self.walk() if f.path == path), None)

    @property
    def has_row_buttons(self) -> bool:
        return any(f.widget == "rows" for f in self.walk())


@dataclass(eq=False)
class SummaryRow:
    key: str
    path: str
    value: str | None = None  # one value (may hold line breaks)
    values: list[str] | None = None  # several: ticked boxes, a list of names
    items: list[tuple[str, list[SummaryRow]]] | None = None  # repeating rows: (legend, rows)
    children: list[SummaryRow] | None = None  # a section

    @property
    def kind(self) -> str:
        if self.children is not None:
            return "section"
        if self.items is not None:
            return "items"
        return "list" if self.values is not None else "value"

    @property
    def lines(self) -> list[str]:
        return (self.value or "").splitlines()


# ---------------------------------------------------------------- reading the schema


def _ui(ui: Any, key: str) -> dict:
    value = ui.get(key) if isinstance(ui, dict) else None
    return value if isinstance(value, dict) else {}


def _type(schema: dict) -> str:
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


def _choices(schema: dict) -> list[tuple[Any, str]] | None:
    """(JSON value, text) for an enum, written either as `enum` or as `oneOf` of `const`s."""
    if isinstance(schema.get("enum"), list):
        return [(v, str(v)) for v in schema["enum"] if v is not None]
    for key in ("oneOf", "anyOf"):
        alternatives = schema.get(key)
        if isinstance(alternatives, list) and alternatives and all(
                isinstance(a, dict) and "const" in a for a in alternatives):
            return [(a["const"], a.get("title") or str(a["const"])) for a in alternatives if a["const"] is not None]
    return None


def _options(schema: dict, widget: str) -> list[tuple[Any, str]]:
    if widget == "checkboxes":
        return _choices(schema.get("items") or {}) or []
    if _type(schema) == "boolean":
        return YES_NO
    return _choices(schema) or []


def _widget(schema: dict, ui: dict) -> str:
    kind, asked = _type(schema), ui.get("ui:widget")
    if kind == "object":
        return "group"
    if kind == "array":
        return "checkboxes" if _choices(schema.get("items") or {}) is not None else "rows"
    choices = _choices(schema)
    if choices is not None:
        if asked in ("radios", "select"):
            return asked
        return "radios" if len(choices) <= MAX_RADIOS else "select"
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


def _ordered(schema: dict, ui: dict) -> list[str]:
    """Property names in `ui:order` order; unlisted ones go after (or where "*" stands)."""
    names = list(schema.get("properties") or {})
    order = ui.get("ui:order") if isinstance(ui.get("ui:order"), list) else []
    star = order.index("*") if "*" in order else len(order)
    head = list(dict.fromkeys(n for n in order[:star] if n in names))
    tail = [n for n in dict.fromkeys(order[star + 1:]) if n in names and n not in head]
    return head + [n for n in names if n not in head and n not in tail] + tail


def _properties(schema: dict, ui: dict) -> Iterator[tuple[str, dict, dict]]:
    props = schema.get("properties") or {}
    for name in _ordered(schema, ui):
        if isinstance(props[name], dict):
            yield name, props[name], _ui(ui, name)


def _label(schema: dict, name: str) -> str:
    return schema.get("title") or name.replace("_", " ").strip().capitalize() or name


def _read_only(schema: dict, ui: dict) -> bool:
    return bool(schema.get("readOnly") or ui.get("ui:readonly"))


def _lower(text: str) -> str:
    """Lower-case the first letter, unless the text starts with an acronym ("NHS number")."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def _join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def _html_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name.replace(".", "-"))


def _text(value: Any) -> str:
    """A JSON scalar as a form would post it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _blank(typed: Any) -> bool:
    if isinstance(typed, dict):
        return all(_blank(v) for v in typed.values())
    if isinstance(typed, list):
        return all(_blank(v) for v in typed)
    return typed is None or (isinstance(typed, str) and not typed.strip())


# ---------------------------------------------------------------- data -> what a form shows


def to_raw(schema: dict, ui: dict | None, data: Any) -> dict:
    """Saved data in the shape `parse_form` returns as `raw`: strings as a form would show them."""
    return _raw_value(schema, ui or {}, data if isinstance(data, dict) else {})


def _raw_value(schema: dict, ui: dict, value: Any) -> Any:
    widget = _widget(schema, ui)
    if widget == "group":
        value = value if isinstance(value, dict) else {}
        return {n: _raw_value(s, u, value.get(n)) for n, s, u in _properties(schema, ui)}
    if widget == "rows":
        items, items_ui = schema.get("items") or {}, _ui(ui, "items")
        return [_raw_value(items, items_ui, v) for v in value] if isinstance(value, list) else []
    if widget == "checkboxes":
        return [_text(v) for v in value] if isinstance(value, list) else []
    if widget == "date":
        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", value or "") if isinstance(value, str) else None
        if not match:
            return {part: "" for part in DATE_PARTS}
        year, month, day = match.groups()
        return {"day": str(int(day)), "month": str(int(month)), "year": year}
    return _text(value) if not isinstance(value, (dict, list)) else ""


# ---------------------------------------------------------------- build_form


def build_form(schema: dict, ui: dict | None, data: dict | None, errors: list[dict] | None = None,
               raw: dict | None = None, *, focus: str | None = None) -> Form:
    """Fields to render. Values come from `raw` (what was just posted) when given, else from `data`;
    read-only fields always show `data`. `errors` are validator/parse problems (dotted paths);
    `focus` is an element id from `apply_row_action` that gets `autofocus`."""
    ui = ui or {}
    data = data if isinstance(data, dict) else {}
    shown = raw if isinstance(raw, dict) else to_raw(schema, ui, data)
    fields = _object_fields(schema, ui, shown, data, "", 0)
    form = Form(title=schema.get("title") or "", description=schema.get("description"), fields=fields)
    unplaced = _attach_errors(form, errors or [])
    form.error_list = [{"text": f.error, "href": "#" + f.focus_id} for f in form.walk() if f.error]
    form.error_list += [{"text": message} for message in unplaced]
    if focus:
        _set_focus(form, focus)
    return form


def _object_fields(schema: dict, ui: dict, shown: Any, data: Any, prefix: str, depth: int) -> list[Field]:
    shown = shown if isinstance(shown, dict) else {}
    data = data if isinstance(data, dict) else {}
    required = set(schema.get("required") or [])
    return [_field(sub, sub_ui, _label(sub, name), _join(prefix, name), shown.get(name), data.get(name),
                   name in required, depth)
            for name, sub, sub_ui in _properties(schema, ui)]


def _field(schema: dict, ui: dict, label: str, name: str, shown: Any, data: Any, required: bool,
           depth: int) -> Field:
    widget = _widget(schema, ui)
    result = Field(name=name, id=_html_id(name), path=name, label=label, widget=widget,
                   hint=ui.get("ui:help") or schema.get("description"), required=required,
                   max_length=schema.get("maxLength"), depth=depth, kind=_type(schema),
                   read_only=_read_only(schema, ui))
    result.options = [{"value": _text(v), "text": t} for v, t in _options(schema, widget)]
    if result.read_only:  # never posted, so only saved data can fill it
        result.value = _raw_value(schema, ui, data)
        result.display = _display(schema, widget, data) or ""
    elif widget == "group":
        result.children = _object_fields(schema, ui, shown, data, name, depth + 1)
    elif widget == "rows":
        _add_rows(result, schema, ui, shown, data)
    elif widget == "checkboxes":
        result.value = [v for v in shown if isinstance(v, str)] if isinstance(shown, list) else []
    elif widget == "date":
        shown = shown if isinstance(shown, dict) else {}
        result.value = {part: str(shown.get(part) or "") for part in DATE_PARTS}
    else:
        result.value = shown if isinstance(shown, str) else ""
    return result


def _add_rows(result: Field, schema: dict, ui: dict, shown: Any, data: Any) -> None:
    """One Row per entry; an empty list still shows one empty row to type into."""
    items, items_ui = schema.get("items") or {}, _ui(ui, "items")
    shown = shown if isinstance(shown, list) else []
    data = data if isinstance(data, list) else []
    result.item_title = items.get("title") or result.label
    result.max_items = schema.get("maxItems")
    result.scalar_items = _type(items) != "object"
    count = max(len(shown), 1)
    for index in range(count):
        row_name = _join(result.name, index)
        typed = shown[index] if index < len(shown) else None
        saved = data[index] if index < len(data) else None
        legend = f"{result.item_title} {index + 1}"
        if result.scalar_items:
            fields = [_field(items, items_ui, legend, row_name, typed, saved, False, result.depth + 1)]
        else:
            fields = _object_fields(items, items_ui, typed, saved, row_name, result.depth + 1)
        result.rows.append(Row(fields=fields, legend=legend, id=_html_id(row_name), index=index,
                               remove_value=f"remove:{result.name}:{index}",
                               removable=count > 1 or not _blank(typed)))


def _attach_errors(form: Form, errors: list[dict]) -> list[str]:
    """Put each error on the field its path names (or the nearest enclosing one). Returns the rest."""
    by_path = {f.path: f for f in form.walk()}
    unplaced = []
    for error in errors:
        path, message = str(error.get("field") or ""), str(error.get("message") or "")
        target = by_path.get(path)
        while target is None and "." in path:
            path = path.rsplit(".", 1)[0]
            target = by_path.get(path)
        if target is None:
            unplaced.append(message)
        elif target.widget == "group" and message == REQUIRED_MESSAGE and _blank_required(target):
            for child in _blank_required(target):  # a missing section: name the answers it needs
                child.error = child.error or _humanise(child, message)
        elif target.error is None:  # one message per field, the first one found
            target.error = _humanise(target, message)
    return unplaced


def _blank_required(group: Field) -> list[Field]:
    found = []
    for child in group.children:
        if child.widget == "group" and child.required:
            found += _blank_required(child)
        elif child.required and _blank(child.value):
            found.append(child)
    return found


def _humanise(f: Field, message: str) -> str:
    """Validator wording -> GOV.UK style messages that name the field."""
    label, lower = f.label, _lower(f.label)
    if message == REQUIRED_MESSAGE:
        if f.widget == "rows":
            return f"Add at least one {_lower(f.item_title)}"
        if f.widget == "group":
            return f"Complete ‘{label}’"
        if f.label.endswith("?"):
            return f"Answer ‘{label}’"
        if f.widget == "checkbox":
            return f"Select ‘{label}’"
        if f.widget in ("radios", "select", "checkboxes"):
            return f"Select {lower}"
        return f"Enter {lower}"
    if message.startswith("Enter a real date"):
        return f"{label} must be a real date"
    if message.endswith("is too long"):
        if f.widget in ("rows", "checkboxes") and f.max_items:
            return f"{label} can have up to {f.max_items} entries"
        if f.max_length:
            return f"{label} must be {f.max_length:,} characters or fewer"
    if message.endswith("is not valid under any of the given schemas") or " is not one of " in message:
        return f"Select {lower} from the list"
    if message.endswith("is not a 'email'"):
        return "Enter an email address in the correct format, like name@example.com"
    minimum = re.search(r"is less than the minimum of (\S+)$", message)
    if minimum:
        return f"{label} must be {minimum.group(1)} or more"
    maximum = re.search(r"is greater than the maximum of (\S+)$", message)
    if maximum:
        return f"{label} must be {maximum.group(1)} or less"
    if "is not of type 'integer'" in message:
        return f"{label} must be a whole number"
    return message


def _set_focus(form: Form, focus: str) -> None:
    for f in form.walk():
        if f.widget == "rows" and f.add_id == focus:
            f.add_autofocus = True
            return
        for row in f.rows:
            if row.id == focus:
                first = next((c for child in row.fields for c in child.walk()
                              if c.widget not in ("group", "rows") and not c.read_only), None)
                if first is not None:
                    first.autofocus = True
                return
        if f.widget not in ("group", "rows") and f.focus_id == focus:
            f.autofocus = True
            return


# ---------------------------------------------------------------- parse_form


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
        for prop, sub, sub_ui in _properties(schema, ui):
            if _read_only(sub, sub_ui):
                continue  # set by the system; anything posted for it is ignored
            value, typed = self.value(sub, sub_ui, _label(sub, prop), _join(name, prop), _join(path, prop))
            raw[prop] = typed
            if value is not _MISSING:
                data[prop] = value
        return data, raw

    def value(self, schema: dict, ui: dict, label: str, name: str, path: str) -> tuple[Any, Any]:
        widget = _widget(schema, ui)
        if widget == "group":
            data, raw = self.object(schema, ui, name, path)
            return (data or _MISSING), raw
        if widget == "rows":
            return self.rows(schema, ui, name, path)
        if widget == "checkboxes":
            return self.checkboxes(schema, label, name, path)
        if widget == "date":
            return self.date(label, name, path)
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
            choices = {_text(v): v for v, _ in _options(schema, widget)}
            if text not in choices:
                self.problem(path, f"Select {_lower(label)} from the list")
                return _MISSING, typed
            return choices[text], typed
        if widget == "number":
            return self.number(_type(schema), label, text, path), typed
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

    def checkboxes(self, schema: dict, label: str, name: str, path: str) -> tuple[Any, list]:
        self.seen.add(name)
        typed = [v for v in self.post.get(name, [])]
        choices = {_text(v): v for v, _ in _options(schema, "checkboxes")}
        values = []
        for text in dict.fromkeys(v for v in typed if v.strip()):
            if text in choices:
                values.append(choices[text])
            else:
                self.problem(path, f"Select {_lower(label)} from the list")
        return (values or _MISSING), typed

    def rows(self, schema: dict, ui: dict, name: str, path: str) -> tuple[Any, list]:
        """Posted rows in index order, renumbered; entirely blank rows are dropped."""
        items, items_ui = schema.get("items") or {}, _ui(ui, "items")
        pattern = re.compile(re.escape(name) + r"\.(0|[1-9][0-9]{0,8})(?:\.|$)")  # int() refuses 4,300 digits
        indices = sorted({int(m.group(1)) for key in self.post for m in [pattern.match(key)] if m})
        data, raw = [], []
        for index in indices:
            before = len(self.problems)
            row_path = _join(path, len(data))
            if _type(items) == "object":
                value, typed = self.object(items, items_ui, _join(name, index), row_path)
                value = value or _MISSING
            else:
                value, typed = self.value(items, items_ui, _label(items, name), _join(name, index), row_path)
            if value is _MISSING and len(self.problems) == before:
                if self.keep_blank_rows:
                    raw.append(typed)
                continue
            # a row with only a bad value keeps its place, so problem paths match the row shown
            data.append({} if value is _MISSING and _type(items) == "object" else
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
        return data, raw, _html_id(rest) + "-add"
    rows = _raw_at(raw, rest)
    objects = _type(array.get("items") or {}) == "object"
    if not rows:
        rows.append({} if objects else "")  # the empty row that was on show
    if array.get("maxItems") is None or len(rows) < array["maxItems"]:
        rows.append({} if objects else "")
    return data, raw, _html_id(_join(rest, len(rows) - 1))


def _schema_at(schema: dict, ui: dict, path: str) -> dict:
    """The array schema a button's path names (through groups and rows)."""
    node, node_ui = schema, ui
    for part in path.split(".") if path else []:
        if _type(node) == "array" and re.fullmatch(r"[0-9]+", part):
            node, node_ui = node.get("items") or {}, _ui(node_ui, "items")
        elif _type(node) == "object" and isinstance((node.get("properties") or {}).get(part), dict):
            node, node_ui = node["properties"][part], _ui(node_ui, part)
        else:
            raise ValueError(f"this form has no list {path!r}")
    if _widget(node, node_ui) != "rows" or _read_only(node, node_ui):
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
    for name, sub, sub_ui in _properties(schema, ui or {}):
        if name not in saved:
            continue
        if _read_only(sub, sub_ui):
            data[name] = saved[name]
        elif _type(sub) == "object" and isinstance(saved[name], dict):
            inner = carry_read_only(sub, sub_ui, saved[name], dict(data.get(name) or {}))
            if inner:
                data[name] = inner
    return data


# ---------------------------------------------------------------- summary


def summary(schema: dict, ui: dict | None, data: dict | None) -> list[SummaryRow]:
    """Answers for read-only display (episode page, print), skipping blanks."""
    return _summary_object(schema, ui or {}, data if isinstance(data, dict) else {}, "")


def _summary_object(schema: dict, ui: dict, data: dict, prefix: str) -> list[SummaryRow]:
    rows = []
    for name, sub, sub_ui in _properties(schema, ui):
        row = _summary_row(sub, sub_ui, _label(sub, name), data.get(name), _join(prefix, name))
        if row is not None:
            rows.append(row)
    return rows


def _summary_row(schema: dict, ui: dict, label: str, value: Any, path: str) -> SummaryRow | None:
    widget = _widget(schema, ui)
    if widget == "group":
        children = _summary_object(schema, ui, value, path) if isinstance(value, dict) else []
        return SummaryRow(label, path, children=children) if children else None
    if widget in ("rows", "checkboxes"):
        if not isinstance(value, list):
            return None
        items, items_ui = schema.get("items") or {}, _ui(ui, "items")
        if widget == "rows" and _type(items) == "object":
            title = items.get("title") or label
            entries = [_summary_object(items, items_ui, v, _join(path, i)) if isinstance(v, dict) else []
                       for i, v in enumerate(value)]
            entries = [e for e in entries if e]
            return SummaryRow(label, path, items=[(f"{title} {n}", e) for n, e in enumerate(entries, 1)]) \
                if entries else None
        item_widget = _widget(items, items_ui) if widget == "rows" else "radios"
        texts = [_display(items, item_widget, v) for v in value]
        texts = [t for t in texts if t]
        return SummaryRow(label, path, values=texts) if texts else None
    text = _display(schema, widget, value)
    return SummaryRow(label, path, value=text) if text else None


def _display(schema: dict, widget: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (dict, list)):
        return None
    choices = {_text(v): t for v, t in _options(schema, widget)}
    if _text(value) in choices:
        return choices[_text(value)]
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if widget == "date" and isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"
    return _text(value)
