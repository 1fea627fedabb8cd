"""Saved or posted answers -> the fields a form shows (`build_form`), and saved data as typed text (`to_raw`)."""
from __future__ import annotations

import re
from typing import Any

from app.forms import schema_reading as read
from app.forms.errors import attach_errors
from app.forms.model import Field, Form, Row
from app.forms.schema_reading import DATE_PARTS
from app.forms.summary import display


def to_raw(schema: dict, ui: dict | None, data: Any) -> dict:
    """Saved data in the shape `parse_form` returns as `raw`: strings as a form would show them."""
    return _raw_value(schema, ui or {}, data if isinstance(data, dict) else {})


def _raw_value(schema: dict, ui: dict, value: Any) -> Any:
    widget = read.widget(schema, ui)
    if widget == "group":
        value = value if isinstance(value, dict) else {}
        return {n: _raw_value(s, u, value.get(n)) for n, s, u in read.properties(schema, ui)}
    if widget == "rows":
        items, items_ui = schema.get("items") or {}, read.ui_at(ui, "items")
        return [_raw_value(items, items_ui, v) for v in value] if isinstance(value, list) else []
    if widget == "checkboxes":
        return [read.as_text(v) for v in value] if isinstance(value, list) else []
    if widget == "person":
        email = read.as_text(value) if isinstance(value, str) else ""
        listed = next((p["value"] for p in read.people(ui) if p["value"].lower() == email.lower()), None)
        if listed or not email:
            return {"choice": listed or "", "other": ""}
        return {"choice": read.OTHER_PERSON, "other": email}
    if widget == "date":
        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", value or "") if isinstance(value, str) else None
        if not match:
            return {part: "" for part in DATE_PARTS}
        year, month, day = match.groups()
        return {"day": str(int(day)), "month": str(int(month)), "year": year}
    return read.as_text(value) if not isinstance(value, (dict, list)) else ""


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
    unplaced = attach_errors(form, errors or [])
    form.error_list = [{"text": f.error, "href": "#" + f.focus_id} for f in form.walk() if f.error]
    form.error_list += [{"text": message} for message in unplaced]
    if focus:
        _set_focus(form, focus)
    return form


def _object_fields(schema: dict, ui: dict, shown: Any, data: Any, prefix: str, depth: int) -> list[Field]:
    shown = shown if isinstance(shown, dict) else {}
    data = data if isinstance(data, dict) else {}
    required = set(schema.get("required") or [])
    made = {name: _field(sub, sub_ui, read.label(sub, name), read.join(prefix, name), shown.get(name),
                         data.get(name), name in required, depth)
            for name, sub, sub_ui in read.properties(schema, ui)}
    follow_ups = read.follow_ups(schema, ui)
    for name, (question, answer) in follow_ups.items():  # shown under their answer, not on their own
        made[question].reveals.setdefault(answer, []).append(made[name])
    return [f for name, f in made.items() if name not in follow_ups]


def _field(schema: dict, ui: dict, label: str, name: str, shown: Any, data: Any, required: bool,
           depth: int) -> Field:
    widget = read.widget(schema, ui)
    result = Field(name=name, id=read.html_id(name), path=name, label=label, widget=widget,
                   hint=ui.get("ui:help") or schema.get("description"), required=required,
                   max_length=schema.get("maxLength"), depth=depth, kind=read.json_type(schema),
                   read_only=read.read_only(schema, ui))
    result.options = read.people(ui) if widget == "person" else \
        [{"value": read.as_text(v), "text": t} for v, t in read.options(schema, widget)]
    if result.read_only:  # never posted, so only saved data can fill it
        result.value = _raw_value(schema, ui, data)
        result.display = display(schema, widget, data) or ""
    elif widget == "group":
        result.children = _object_fields(schema, ui, shown, data, name, depth + 1)
    elif widget == "rows":
        _add_rows(result, schema, ui, shown, data)
    elif widget == "checkboxes":
        result.value = [v for v in shown if isinstance(v, str)] if isinstance(shown, list) else []
    elif widget == "date":
        shown = shown if isinstance(shown, dict) else {}
        result.value = {part: str(shown.get(part) or "") for part in DATE_PARTS}
    elif widget == "person":
        result.value = shown if isinstance(shown, dict) else {}
    else:
        result.value = shown if isinstance(shown, str) else ""
    return result


def _add_rows(result: Field, schema: dict, ui: dict, shown: Any, data: Any) -> None:
    """One Row per entry; an empty list still shows one empty row to type into."""
    items, items_ui = schema.get("items") or {}, read.ui_at(ui, "items")
    shown = shown if isinstance(shown, list) else []
    data = data if isinstance(data, list) else []
    result.item_title = items.get("title") or result.label
    result.max_items = schema.get("maxItems")
    result.scalar_items = read.json_type(items) != "object"
    count = max(len(shown), 1)
    for index in range(count):
        row_name = read.join(result.name, index)
        typed = shown[index] if index < len(shown) else None
        saved = data[index] if index < len(data) else None
        legend = f"{result.item_title} {index + 1}"
        if result.scalar_items:
            fields = [_field(items, items_ui, legend, row_name, typed, saved, False, result.depth + 1)]
        else:
            fields = _object_fields(items, items_ui, typed, saved, row_name, result.depth + 1)
        result.rows.append(Row(fields=fields, legend=legend, id=read.html_id(row_name), index=index,
                               remove_value=f"remove:{result.name}:{index}",
                               removable=count > 1 or not read.blank(typed)))


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
