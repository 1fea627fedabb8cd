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
    name: str  # the data path of its answers: section_b_child, or section_h_strengths_needs.h1_development
    title: str  # "B. Identifying details of the child"
    hint: str | None
    schema: dict  # the whole form's schema cut to this section alone
    ui: dict
    ui_own: dict  # the section's own UI schema (what `ui:shows` and friends are read from)
    part_of: str | None = None  # the title of the section it is a part of

    @property
    def path(self) -> list[str]:
        return self.name.split(".")

    @property
    def shows(self) -> str | None:
        """Something the system already holds, shown read-only on the section's page (e.g. "consent")."""
        value = self.ui_own.get("ui:shows")
        return value if isinstance(value, str) else None


def _groups(schema: dict, ui: dict) -> list[tuple[str, dict, dict]]:
    """The object answers of an object, or nothing when it has any other kind of answer."""
    found = list(read.properties(schema, ui))
    ok = found and all(read.widget(sub, sub_ui) == "group" and not read.read_only(sub, sub_ui)
                       for _, sub, sub_ui in found)
    return found if ok else []


def is_sectioned(schema: dict | None, ui: dict | None) -> bool:
    if not isinstance(schema, dict) or not isinstance(ui, dict) or ui.get(SECTIONS_KEY) is not True:
        return False
    return len(_groups(schema, ui)) > 1


def _only(parent: dict, name: str, child: dict, keep: tuple) -> dict:
    """`parent` with `child` as its one answer (required if it was)."""
    cut = {key: copy.deepcopy(value) for key, value in parent.items() if key in keep}
    cut.update(type="object", properties={name: child})
    if name in (parent.get("required") or []):
        cut["required"] = [name]
    return cut


def sections(schema: dict, ui: dict) -> list[Section]:
    """Each top-level answer, or each part of one whose UI schema says `ui:sections` too (H1, H2, H3)."""
    found = []
    for name, sub, sub_ui in read.properties(schema, ui):
        title = read.label(sub, name)
        parts = _groups(sub, sub_ui) if sub_ui.get(SECTIONS_KEY) is True else []
        if not parts:
            cut = _only(schema, name, sub, _KEPT)
            found.append(Section(name, title, sub.get("description"), cut, {"ui:order": [name], name: sub_ui},
                                 sub_ui))
            continue
        for part, part_schema, part_ui in parts:
            cut = _only(schema, name, _only(sub, part, part_schema, ("title", "additionalProperties")), _KEPT)
            cut_ui = {"ui:order": [name], name: {"ui:order": [part], part: part_ui}}
            found.append(Section(f"{name}.{part}", read.label(part_schema, part),
                                 part_schema.get("description") or sub.get("description"), cut, cut_ui, part_ui,
                                 part_of=title))
    return found


def find(schema: dict, ui: dict, name: str) -> Section | None:
    return next((s for s in sections(schema, ui) if s.name == name), None)


def at(tree, path: list[str]):
    """The value at a data path, or None."""
    for key in path:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def shaped(path: list[str], value) -> dict:
    """`value` put at `path` in an otherwise empty form: {"a": {"b": value}}."""
    for key in reversed(path):
        value = {key: value}
    return value


def _put(tree: dict, path: list[str], value) -> dict:
    """A copy of `tree` with `value` at `path` (or nothing there when value is None)."""
    tree = dict(tree)
    if len(path) == 1:
        if value is None:
            tree.pop(path[0], None)
        else:
            tree[path[0]] = value
        return tree
    inner = tree.get(path[0]) if isinstance(tree.get(path[0]), dict) else {}
    tree[path[0]] = _put(inner, path[1:], value)
    return tree


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
    path = name.split(".")
    if not read.blank(at(_part(draft, "data"), path)) or not read.blank(at(_part(draft, "raw"), path)):
        return IN_PROGRESS
    return NOT_STARTED


def has_saved(draft: dict | None, name: str) -> bool:
    path = name.split(".")
    return (at(_part(draft, "data"), path) is not None or at(_part(draft, "raw"), path) is not None
            or name in _part(draft, "sections"))


def saved_answers(draft: dict | None, name: str) -> tuple[dict, dict | None]:
    """(data, raw) of one section as last saved, shaped as the section's form: {name: ...}."""
    path = name.split(".")
    data, raw = at(_part(draft, "data"), path), at(_part(draft, "raw"), path)
    return (shaped(path, data) if data is not None else {}), (shaped(path, raw) if isinstance(raw, dict) else None)


def with_section(draft: dict | None, name: str, data: dict, raw: dict, state: str,
                 problems: list[dict] | None = None) -> dict:
    """A new draft: the section's answers replace its old ones; the other sections stay as they were."""
    draft, path = dict(draft or {}), name.split(".")
    typed = at(raw, path)
    whole = _put(_part(draft, "data"), path, at(data, path))
    typed = _put(_part(draft, "raw"), path, typed if isinstance(typed, dict) else {})
    states = {**_part(draft, "sections"), name: state}
    unchecked = {key: value for key, value in _part(draft, "problems").items() if key != name}
    if problems:
        unchecked[name] = problems
    draft.update(data=whole, raw=typed, sections=states, problems=unchecked)
    return draft


def with_posted(draft: dict | None, all_sections: list[Section], posted: set[str], data: dict, raw: dict,
                problems: list[dict]) -> dict:
    """A draft saved from the whole form on one page (a tab opened before the form was sectioned):
    each section with a field among the `posted` names is saved unchecked, as "come back later"
    does; the sections not posted, and their statuses, stay as they were."""
    def within(name: str, field: str) -> bool:
        return field == name or field.startswith(name + ".")

    for s in all_sections:
        if any(within(s.name, name) for name in posted):
            own = [p for p in problems if within(s.name, str(p.get("field") or ""))]
            draft = with_section(draft, s.name, data, raw, IN_PROGRESS, own)
    return dict(draft or {})


def saved_problems(draft: dict | None) -> list[dict]:
    """Conversion problems of the sections saved for later (a date that is not a date), in order."""
    return [p for found in _part(draft, "problems").values() if isinstance(found, list)
            for p in found if isinstance(p, dict)]


def whole_data(draft: dict | None) -> dict:
    return dict(_part(draft, "data"))


def with_known(data: dict, draft: dict | None, known: dict, all_sections: list[Section]) -> dict:
    """`data` with what eCAF fills in for each section never saved (the child's names, the assessor)."""
    for s in all_sections:
        value = at(known, s.path)
        if value is not None and not has_saved(draft, s.name):
            data = _put(data, s.path, value)
    return data


def page_form(form: Form, depth: int = 1) -> Form:
    """A section's form without the fieldsets around it: its title is the page's heading."""
    for _ in range(depth):
        if len(form.fields) != 1 or form.fields[0].widget != "group":
            return form
        group = form.fields[0]
        promoted = Form(title=group.label, description=group.hint, fields=group.children,
                        error_list=form.error_list)
        if group.error:  # said of the section as a whole: shown at the top, as nothing on the page stands for it
            promoted.error_list = [e for e in form.error_list if e.get("href") != "#" + group.focus_id]
            promoted.error_list.append({"text": group.error})
        form = promoted
    return form
