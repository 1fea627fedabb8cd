"""A long form as the GOV.UK "complete multiple tasks" pattern: a task list of its sections, one page each.

A form is split when its UI schema asks for it (`"ui:sections": true` at the top) and every top-level
answer is an object: each of those objects is a section, with its title, order and questions from
the schema and UI schema as the process owner wrote them. Other forms keep their single page.

The task's draft keeps the whole form as the single page does (`data`, `raw`: contributions and the
single page read them), plus, per section, its status and the problems found when it was last saved
without being checked (so a half-typed date saved "for later" still stops the final submission).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from app.forms import schema_reading as read
from app.forms.model import Form

SECTIONS_KEY = "ui:sections"
NOT_STARTED, IN_PROGRESS, COMPLETED = "not_started", "in_progress", "completed"
STATUS_TEXT = {NOT_STARTED: "Not started", IN_PROGRESS: "In progress", COMPLETED: "Completed"}
# Top-level keywords a section keeps: the rest (allOf, if/then...) may join sections, so they are
# checked on the whole form when it is submitted.
_KEPT = ("$schema", "$id", "$defs", "definitions", "type", "additionalProperties", "x-ecaf-task-data")


@dataclass
class Section:
    name: str  # the top-level property: section_b_child
    title: str  # "B. Identifying details of the child"
    hint: str | None
    schema: dict  # the whole form's schema cut to this section alone
    ui: dict
    ui_own: dict  # the section's own UI schema (what `ui:shows` and friends are read from)

    @property
    def shows(self) -> str | None:
        """Something the system already holds, shown read-only on the section's page (e.g. "consent")."""
        value = self.ui_own.get("ui:shows")
        return value if isinstance(value, str) else None


def is_sectioned(schema: dict | None, ui: dict | None) -> bool:
    if not isinstance(schema, dict) or not isinstance(ui, dict) or ui.get(SECTIONS_KEY) is not True:
        return False
    parts = list(read.properties(schema, ui))
    return len(parts) > 1 and all(read.widget(sub, sub_ui) == "group" and not read.read_only(sub, sub_ui)
                                  for _, sub, sub_ui in parts)


def sections(schema: dict, ui: dict) -> list[Section]:
    required = set(schema.get("required") or [])
    found = []
    for name, sub, sub_ui in read.properties(schema, ui):
        cut = {key: copy.deepcopy(value) for key, value in schema.items() if key in _KEPT}
        cut["type"] = "object"
        cut["title"] = read.label(sub, name)
        cut["properties"] = {name: sub}
        if name in required:
            cut["required"] = [name]
        cut_ui = {"ui:order": [name], name: sub_ui}
        found.append(Section(name, read.label(sub, name), sub.get("description"), cut, cut_ui, sub_ui))
    return found


def find(schema: dict, ui: dict, name: str) -> Section | None:
    return next((s for s in sections(schema, ui) if s.name == name), None)


# ---------------------------------------------------------------- the draft


def _part(draft: dict | None, key: str) -> dict:
    value = (draft or {}).get(key)
    return value if isinstance(value, dict) else {}


def status(draft: dict | None, name: str) -> str:
    """Completed once saved and checked; in progress when saved otherwise (or by the single page, or
    when a contribution was taken in); not started before anything is saved for it."""
    marked = _part(draft, "sections").get(name)
    if marked in (COMPLETED, IN_PROGRESS):
        return marked
    if not read.blank(_part(draft, "data").get(name)) or not read.blank(_part(draft, "raw").get(name)):
        return IN_PROGRESS
    return NOT_STARTED


def has_saved(draft: dict | None, name: str) -> bool:
    return name in _part(draft, "data") or name in _part(draft, "raw") or name in _part(draft, "sections")


def saved_answers(draft: dict | None, name: str) -> tuple[dict, dict | None]:
    """(data, raw) of one section as last saved, shaped as the section's form: {name: ...}."""
    data = _part(draft, "data").get(name)
    raw = _part(draft, "raw").get(name)
    return ({name: data} if data is not None else {}), ({name: raw} if isinstance(raw, dict) else None)


def with_section(draft: dict | None, name: str, data: dict, raw: dict, state: str,
                 problems: list[dict] | None = None) -> dict:
    """A new draft: the section's answers replace its old ones; the other sections stay as they were."""
    draft = dict(draft or {})
    whole, typed = dict(_part(draft, "data")), dict(_part(draft, "raw"))
    whole.pop(name, None)
    if name in data:
        whole[name] = data[name]
    typed[name] = raw.get(name) if isinstance(raw.get(name), dict) else {}
    states = {**_part(draft, "sections"), name: state}
    unchecked = {key: value for key, value in _part(draft, "problems").items() if key != name}
    if problems:
        unchecked[name] = problems
    draft.update(data=whole, raw=typed, sections=states, problems=unchecked)
    return draft


def saved_problems(draft: dict | None) -> list[dict]:
    """Conversion problems of the sections saved for later (a date that is not a date), in order."""
    return [p for found in _part(draft, "problems").values() if isinstance(found, list)
            for p in found if isinstance(p, dict)]


def whole_data(draft: dict | None) -> dict:
    return dict(_part(draft, "data"))


def page_form(form: Form) -> Form:
    """A section's form without the section's own fieldset: its title is the page's heading."""
    if len(form.fields) != 1 or form.fields[0].widget != "group":
        return form
    group = form.fields[0]
    promoted = Form(title=group.label, description=group.hint, fields=group.children, error_list=form.error_list)
    if group.error:  # said of the section as a whole: shown at the top, as nothing on the page stands for it
        promoted.error_list = [e for e in form.error_list if e.get("href") != "#" + group.focus_id]
        promoted.error_list.append({"text": group.error})
    return promoted
