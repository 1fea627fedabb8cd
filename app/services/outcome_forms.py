"""The headline outcomes on a task's form: the review, final summary and six-month check show only
the outcomes they must speak of, and what they say is checked against the plan (app/outcomes.py)."""
from __future__ import annotations

import copy

from sqlalchemy.orm import Session

from app import outcomes
from app.engine import forms as form_tools
from app.engine.errors import FormInvalid
from app.models import Episode, HumanTask


def form_for(session: Session, episode: Episode, task: HumanTask, schema: dict, ui: dict | None):
    """The form cut down to the outcomes chosen in the plan (or met at closure, for the six-month
    check); without any (a plan agreed before outcomes were asked), the outcomes question is left out."""
    kind = outcomes.form_kind(task.form)
    if kind is None or kind == "action_plan":
        return schema, ui
    field = outcomes.FORMS[kind][1]
    codes = outcomes.expected(session, episode.id, kind)
    schema, ui = copy.deepcopy(schema), copy.deepcopy(ui or {})
    if field not in schema.get("properties", {}):
        return schema, ui
    if not codes:
        del schema["properties"][field]
        schema["required"] = [name for name in schema.get("required", []) if name != field]
        ui.pop(field, None)
        if "ui:order" in ui:
            ui["ui:order"] = [name for name in ui["ui:order"] if name != field]
        return schema, ui
    block = schema["properties"][field]
    block["properties"] = {code: part for code, part in block["properties"].items() if code in codes}
    if field in ui and "ui:order" in ui[field]:
        ui[field]["ui:order"] = [code for code in ui[field]["ui:order"] if code in codes]
    return schema, ui


def problems(session: Session, task: HumanTask, data: dict) -> list[dict]:
    """What the submitted outcomes get wrong: an outcome the plan did not choose (or that was not met
    at closure), one it chose left without progress, "Met" or an answer to the check without evidence."""
    kind = outcomes.form_kind(task.form)
    if kind is None:
        return []
    expected = outcomes.expected(session, task.episode_id, kind)
    return outcomes.problems(kind, form_tools.strip_blanks(data or {}), expected)


def refuse_problems(session: Session, task: HumanTask, data: dict) -> None:
    """Inside the step that completes the task: the same problems refuse it, nothing changed."""
    if found := problems(session, task, data):
        raise FormInvalid(found)
