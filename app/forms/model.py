"""What the form templates get: a form's fields, with the values, errors and rows of one request."""
from __future__ import annotations

from dataclasses import dataclass, field as _default
from typing import Any, Iterator

from app.forms import schema_reading as read
from app.forms.schema_reading import DATE_PARTS


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
        return read.lower_first(self.legend)


@dataclass(eq=False)
class Field:
    name: str  # HTML name; a date posts <name>.day, <name>.month and <name>.year
    id: str
    path: str  # dotted data path, the same as `name`: errors are matched on it
    label: str
    widget: str  # text textarea number email date radios checkboxes checkbox select person rows group
    hint: str | None = None
    # as typed: a string, a list for checkboxes, {day, month, year} for a date, {choice, other} for a person
    value: Any = ""
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
    # follow-up questions shown under one answer (`ui:reveal`): answer as posted -> its fields
    reveals: dict[str, list[Field]] = _default(default_factory=dict)

    @property
    def focus_id(self) -> str:
        """The element an error summary link or autofocus should land on."""
        if self.widget == "person" and self.person["choice"] == read.OTHER_PERSON:
            return self.id + "-other"
        return self.id + "-day" if self.widget == "date" else self.id

    @property
    def person(self) -> dict:
        """A person answer as typed: the choice (an email, or "other") and the email typed for "other"."""
        value = self.value if isinstance(self.value, dict) else {}
        return {"choice": str(value.get("choice") or ""), "other": str(value.get("other") or "")}

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
        return "Add another " + read.lower_first(self.item_title)

    @property
    def can_add(self) -> bool:
        return self.max_items is None or len(self.rows) < self.max_items

    @property
    def clearable(self) -> bool:
        """Radios cannot be unticked without JavaScript, so optional ones get a "Not answered" choice."""
        return self.widget == "radios" and not self.required

    def revealed(self) -> list[Field]:
        """The follow-up questions the current answer shows."""
        return [f for answer, fields in self.reveals.items() if read.chosen(self.value, answer) for f in fields]

    def walk(self) -> Iterator[Field]:
        yield self
        for fields in self.reveals.values():
            for child in fields:
                yield from child.walk()
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

    def markup(self, default_action: str | None = "save"):
        """The fields as HTML (components/schema_form.html `fields(form)`)."""
        from app.forms.markup import fields_markup  # the renderer needs this module first

        return fields_markup(self, default_action)
