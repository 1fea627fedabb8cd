"""Answers for read-only display (episode page, print): `summary`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.forms import schema_reading as read
from app.forms.schema_reading import MONTH_NAMES


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


def summary(schema: dict, ui: dict | None, data: dict | None) -> list[SummaryRow]:
    """Answers for read-only display (episode page, print), skipping blanks."""
    return _summary_object(schema, ui or {}, data if isinstance(data, dict) else {}, "")


def _summary_object(schema: dict, ui: dict, data: dict, prefix: str) -> list[SummaryRow]:
    rows = []
    for name, sub, sub_ui in read.properties(schema, ui, hidden=True):  # what was recorded before is still shown
        row = _summary_row(sub, sub_ui, read.label(sub, name), data.get(name), read.join(prefix, name))
        if row is not None:
            rows.append(row)
    return rows


def _summary_row(schema: dict, ui: dict, label: str, value: Any, path: str) -> SummaryRow | None:
    widget = read.widget(schema, ui)
    if widget == "group":
        children = _summary_object(schema, ui, value, path) if isinstance(value, dict) else []
        return SummaryRow(label, path, children=children) if children else None
    if widget in ("rows", "checkboxes"):
        if not isinstance(value, list):
            return None
        items, items_ui = schema.get("items") or {}, read.ui_at(ui, "items")
        if widget == "rows" and read.json_type(items) == "object":
            title = items.get("title") or label
            entries = [_summary_object(items, items_ui, v, read.join(path, i)) if isinstance(v, dict) else []
                       for i, v in enumerate(value)]
            entries = [e for e in entries if e]
            return SummaryRow(label, path, items=[(f"{title} {n}", e) for n, e in enumerate(entries, 1)]) \
                if entries else None
        item_widget = read.widget(items, items_ui) if widget == "rows" else "radios"
        texts = [display(items, item_widget, v) for v in value]
        texts = [t for t in texts if t]
        return SummaryRow(label, path, values=texts) if texts else None
    text = display(schema, widget, value)
    return SummaryRow(label, path, value=text) if text else None


def display(schema: dict, widget: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (dict, list)):
        return None
    choices = {read.as_text(v): t for v, t in read.options(schema, widget)}
    if read.as_text(value) in choices:
        return choices[read.as_text(value)]
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if widget == "date" and isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"
    return read.as_text(value)
