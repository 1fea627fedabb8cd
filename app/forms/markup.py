"""A form's fields as HTML: the pieces of components/form_fields.html put together in page order.

`fields_markup(form)` is what the template's `fields(form)` shows (through `Form.markup`). The
pieces come compiled (app/forms/pieces.py) unless `pieces=Drawn()` asks for every macro to be
drawn, which the tests use as the reference.
"""
from __future__ import annotations

from markupsafe import Markup

from app.forms.model import Field, Form
from app.forms.pieces import Compiled, Drawn

COMPILED = Compiled()


def fields_markup(form: Form, default_action: str | None = "save", pieces: Drawn = COMPILED) -> Markup:
    out: list = []
    if default_action and form.has_row_buttons:
        out.append("\n  ")
        pieces.enter_key_button(default_action, out)
    for f in form.fields:
        _field(f, pieces, out, "\n  ")
    out.append("\n")
    return Markup("".join(out))


def _field(f: Field, pieces: Drawn, out: list, indent: str) -> None:
    out.append(indent + "\n  ")
    if f.reveals and not f.read_only:
        pieces.control(f, out, _revealed(f, pieces))
    elif f.read_only or f.widget not in ("group", "rows"):
        pieces.control(f, out)
    else:
        body: list = []
        if f.widget == "group":
            for child in f.children:
                _field(child, pieces, body, "\n  ")
        else:
            _rows(f, pieces, body)
        body.append("\n")
        pieces.section(f, "".join(body), out)
    out.append("\n")


def _revealed(f: Field, pieces: Drawn) -> dict[str, Markup]:
    """Each answer's follow-up questions as HTML, to go inside that answer's conditional reveal."""
    shown = {}
    for answer, follow_ups in f.reveals.items():
        body: list = []
        for child in follow_ups:
            _field(child, pieces, body, "\n  ")
        shown[answer] = Markup("".join(body))
    return shown


def _rows(f: Field, pieces: Drawn, out: list) -> None:
    indent = "\n  " if f.scalar_items else "\n    "
    for row in f.rows:
        body: list = []
        for child in row:
            _field(child, pieces, body, indent)
        pieces.row(f, row, "".join(body), out)
    if f.can_add:
        out.append("\n  ")
        pieces.add_another(f, out)
