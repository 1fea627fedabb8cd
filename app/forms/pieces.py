"""Each field's markup compiled once, then filled per request.

Drawing a form through the GOV.UK macros costs hundreds of macro calls (about 50 ms for the
assessment), yet almost all of it is the same for every request: only answers, ticks, errors and
the rows of lists change. So each piece of components/form_fields.html is drawn once on a stand-in
whose answers and error are *markers*, and the result is cut at the markers into fixed text and
holes: `_Hole` for an error or a body, `_Switch` for a part that changes when an answer is given (a
`value=""` that becomes `value="…"`, a choice that gains ` checked`), found by drawing the stand-in
once more with that one answer set. A request only fills the holes, escaping what it puts in.

Keys: a piece is cached under its field's own text (name, label, hint, choices...; `signature`),
so a new process version, whose text differs, can never be shown an old piece, and the pieces that
versions and forms share are compiled once. Bounded: `lru_cache`.

Never template code: labels, hints and choices written by a process owner reach the markup only as
values the macros escape, and what is cached is a list of strings, never template source, so
neither their text nor an answer is ever evaluated. Markers are random per process; a piece whose
markers are not found exactly where expected, or whose filled result differs from the macro's on a
hostile sample, is not compiled: it is drawn by its macro every time (`Drawn`), slower but right.
"""
from __future__ import annotations

import dataclasses
import secrets
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from markupsafe import Markup, escape

from app.forms.model import Field, Row
from app.forms.schema_reading import DATE_PARTS

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
_TOKEN = secrets.token_hex(8)
VALUE, ERROR, BODY = (f"ecaf{kind}{_TOKEN}" for kind in ("value", "error", "body"))
# what the self-check fills in: markup, quotes, an entity and template syntax, all to come out escaped
HOSTILE = "<b class=\"x\">'&amp; {{ 7*7 }}{% if 1 %}</b>"
CACHE_SIZE = 4096  # pieces of each kind; the assessment has about 300, each row of a list adds its own

_ENV = Environment(loader=ChoiceLoader([
    FileSystemLoader(str(TEMPLATES)),
    PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
]), autoescape=True, auto_reload=False)


def _with_reveals(items: list, revealed: dict) -> list:
    """Choices, each answer with follow-up questions carrying them as its conditional reveal."""
    return [dict(item, conditional={"html": revealed[item["value"]]}) if item.get("value") in revealed else item
            for item in items]


_ENV.filters["with_reveals"] = _with_reveals


def _macros():
    return _ENV.get_template("components/form_fields.html").module


# ---------------------------------------------------------------- what a compiled piece is made of


@dataclasses.dataclass(frozen=True)
class _Hole:
    """Text a request puts in: a field's error (escaped) or a section's body (markup already)."""
    marker: str


@dataclasses.dataclass(frozen=True)
class _Switch:
    """A part that reads `unset` until `get(field)` gives an answer; then `before`, the answer
    escaped and `after` (or `before` alone for a tick, when `after` is None)."""
    get: Callable[[Field], str | None]
    unset: str
    before: str
    after: str | None


def fill(parts: tuple, f: Any, out: list, body: str = "") -> None:
    for part in parts:
        if part.__class__ is str:
            out.append(part)
        elif part.__class__ is _Switch:
            got = part.get(f)
            if got is None:
                out.append(part.unset)
            elif part.after is None:
                out.append(part.before)
            else:
                out += (part.before, escape(got), part.after)
        elif part.marker == BODY:
            out.append(body)
        else:
            out.append(escape(f.error))


def _compile(draw: Callable[[Any], str], stand_in: Any, switches: list[tuple[dict, Callable]],
             sample: Any, markers: list[str], sample_body: str = "") -> tuple | None:
    """`draw(stand_in)` cut into text, holes and switches; None when it cannot be done safely.

    `switches` are (changes to the stand-in that show one answer, getter of that answer);
    `sample` is a stand-in full of hostile answers: the compiled piece must draw it exactly as the
    macro does."""
    base = str(draw(stand_in))
    if any(base.count(m) != 1 for m in markers):
        return None
    regions = []  # (start, end, switch) in base
    for changes, get in switches:
        shown = str(draw(dataclasses.replace(stand_in, **changes)))
        region = _difference(base, shown)
        if region is None:
            return None
        start, end, replacement = region
        if start == end and not replacement:
            continue  # this answer never shows (a choice whose value is blank)
        if VALUE in replacement:
            before, _, after = replacement.partition(VALUE)
            regions.append((start, end, _Switch(get, base[start:end], before, after)))
        else:
            regions.append((start, end, _Switch(get, base[start:end], replacement, None)))
    parts = _cut(base, sorted(regions, key=lambda r: (r[0], r[1])), markers)
    if parts is None:
        return None
    out: list = []
    fill(parts, sample, out, sample_body)
    return parts if "".join(out) == draw(sample) else None


def _difference(base: str, shown: str) -> tuple[int, int, str] | None:
    """The one stretch of `base` that `shown` replaces, as (start, end, replacement)."""
    limit = min(len(base), len(shown))
    start = 0
    while start < limit and base[start] == shown[start]:
        start += 1
    tail = 0
    while tail < limit - start and base[-1 - tail] == shown[-1 - tail]:
        tail += 1
    if shown.count(VALUE) > 1:
        return None
    at = shown.find(VALUE)
    if at >= 0:  # keep the whole marker inside the replacement
        start, tail = min(start, at), min(tail, len(shown) - at - len(VALUE))
    return start, len(base) - tail, shown[start:len(shown) - tail]


def _cut(base: str, regions: list, markers: list[str]) -> tuple | None:
    parts: list = []
    at = 0
    for start, end, switch in regions:
        if parts and start <= at:
            return None  # overlapping or touching: which comes first is not known
        if any(m in base[start:end] or m in switch.before or m in (switch.after or "") for m in markers):
            return None
        parts += _holes(base[at:start], markers)
        parts.append(switch)
        at = end
    parts += _holes(base[at:], markers)
    return tuple(p for p in parts if p != "")


def _holes(text: str, markers: list[str]) -> list:
    pieces: list = [text]
    for marker in markers:
        cut: list = []
        for piece in pieces:
            if piece.__class__ is not str or marker not in piece:
                cut.append(piece)
                continue
            before, _, after = piece.partition(marker)
            cut += [before, _Hole(marker), after]
        pieces = cut
    return pieces


# ---------------------------------------------------------------- one field's answer: control(f)


_PER_REQUEST = {"value", "error", "display", "autofocus", "add_autofocus", "children", "rows", "options", "reveals"}
_STATIC = tuple(f.name for f in dataclasses.fields(Field) if f.name not in _PER_REQUEST)
_static_of = attrgetter(*_STATIC)


def signature(f: Field) -> tuple:
    """Everything about a field a piece may show, except what a request changes."""
    return _static_of(f) + (tuple(tuple(o.items()) for o in f.options),)


def _stand_in(key: tuple, error: bool, autofocus: bool = False) -> Field:
    """A field with the key's text, blank answers, and the error marker if it has an error."""
    f = Field(**dict(zip(_STATIC, key[:-1])), options=[dict(o) for o in key[-1]],
              error=ERROR if error else None, autofocus=autofocus)
    f.value = _blank(f)
    return f


def _blank(f: Field) -> Any:
    if f.widget == "checkboxes":
        return []
    if f.widget == "date":
        return {part: "" for part in DATE_PARTS}
    return ""


def _switches(f: Field) -> tuple[list[tuple[dict, Callable]], dict]:
    """(the answers that change the markup, with their getters; a sample setting them all)."""
    if f.read_only:
        return [({"display": VALUE}, lambda g: g.display or None)], {"display": HOSTILE}
    if f.widget == "date":
        return ([({"value": {**_blank(f), part: VALUE}}, lambda g, part=part: g.parts[part] or None)
                 for part in DATE_PARTS], {"value": {part: HOSTILE + part for part in DATE_PARTS}})
    values = [o["value"] for o in f.options]
    if f.widget == "checkboxes":
        return ([({"value": [v]}, lambda g, v=v: "" if v in g.value else None) for v in values],
                {"value": list(values)})
    if f.widget in ("radios", "select"):
        return ([({"value": v}, lambda g, v=v: "" if g.value == v else None) for v in values],
                {"value": values[-1] if values else ""})
    if f.widget == "checkbox":
        return [({"value": "true"}, lambda g: "" if g.value == "true" else None)], {"value": "true"}
    return [({"value": VALUE}, lambda g: g.value or None)], {"value": HOSTILE}


@lru_cache(maxsize=CACHE_SIZE)
def _control(key: tuple, error: bool, autofocus: bool) -> tuple | None:
    stand_in = _stand_in(key, error, autofocus)
    switches, sample = _switches(stand_in)
    sample = dataclasses.replace(stand_in, error=HOSTILE if error else None, **sample)
    return _compile(_macros().control, stand_in, switches, sample, [ERROR] if error else [])


# ---------------------------------------------------------------- sections, rows, buttons


@lru_cache(maxsize=CACHE_SIZE)
def _section(key: tuple, error: bool) -> tuple | None:
    stand_in = _stand_in(key, error)
    sample = dataclasses.replace(stand_in, error=HOSTILE if error else None)
    return _compile(lambda f: _macros().section(f, Markup(BODY if f is stand_in else HOSTILE)), stand_in, [],
                    sample, [ERROR, BODY] if error else [BODY], Markup(HOSTILE))


@lru_cache(maxsize=CACHE_SIZE)
def _row(scalar_items: bool, legend: str, id: str, remove_value: str, removable: bool) -> tuple | None:
    holder = SimpleNamespace(scalar_items=scalar_items)
    stand_in = Row(fields=[], legend=legend, id=id, index=0, remove_value=remove_value, removable=removable)
    parts = _holes(str(_macros().row(holder, stand_in, Markup(BODY))), [BODY])
    return tuple(parts) if len(parts) == 3 else None


@lru_cache(maxsize=CACHE_SIZE)
def _add_another(text: str, value: str, id: str, autofocus: bool) -> str:
    return _macros().add_another(SimpleNamespace(add_text=text, add_value=value, add_id=id, add_autofocus=autofocus))


@lru_cache(maxsize=64)
def _enter_key_button(action: str) -> str:
    return _macros().enter_key_button(action)


# ---------------------------------------------------------------- the two ways of drawing pieces


class Drawn:
    """Every piece drawn by its macro, every time: the reference the compiled pieces must match."""

    def control(self, f: Field, out: list, revealed: dict | None = None) -> None:
        """`revealed`: answer -> the markup of the follow-up questions it reveals."""
        out.append(_macros().control(f, revealed or {}))

    def section(self, f: Field, body: str, out: list) -> None:
        out.append(_macros().section(f, Markup(body)))

    def row(self, f: Field, row: Row, body: str, out: list) -> None:
        out.append(_macros().row(f, row, Markup(body)))

    def add_another(self, f: Field, out: list) -> None:
        out.append(_macros().add_another(f))

    def enter_key_button(self, action: str, out: list) -> None:
        out.append(_macros().enter_key_button(action))


def compiled(f: Field) -> tuple | None:
    """A field's own piece compiled (None when it must be drawn by its macro every time)."""
    key = signature(f)
    try:
        hash(key)
    except TypeError:  # a draft schema's title or hint that is not text: the editor's preview still draws it
        return None
    if f.read_only or f.widget not in ("group", "rows"):
        return _control(key, bool(f.error), f.autofocus)
    return _section(key, bool(f.error))


class Compiled(Drawn):
    """Pieces compiled once per field (see the module's docstring); a piece that cannot be is drawn."""

    def control(self, f: Field, out: list, revealed: dict | None = None) -> None:
        # a question that reveals others is drawn each time (a few per form): its answers' bodies vary
        parts = None if revealed or f.widget == "person" else compiled(f)
        if parts is None:
            super().control(f, out, revealed)
        else:
            fill(parts, f, out)

    def section(self, f: Field, body: str, out: list) -> None:
        parts = compiled(f)
        if parts is None:
            super().section(f, body, out)
        else:
            fill(parts, f, out, body)

    def row(self, f: Field, row: Row, body: str, out: list) -> None:
        parts = _row(f.scalar_items, row.legend, row.id, row.remove_value, row.removable)
        if parts is None:
            super().row(f, row, body, out)
        else:
            out += (parts[0], body, parts[2])

    def add_another(self, f: Field, out: list) -> None:
        out.append(_add_another(f.add_text, f.add_value, f.add_id, f.add_autofocus))

    def enter_key_button(self, action: str, out: list) -> None:
        out.append(_enter_key_button(action))


def cache_info() -> dict[str, Any]:
    return {name: fn.cache_info() for name, fn in (("control", _control), ("section", _section), ("row", _row))}


def forget() -> None:
    """Empty the caches (benchmarks measure a cold form with it)."""
    for fn in (_control, _section, _row, _add_another, _enter_key_button):
        fn.cache_clear()
