"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

A sectioned form's pages (the assessment's sections, Check your answers, Submit): only the person
who may complete the task opens them, as for the single page; everyone else gets 404 and nothing is
saved. A task whose form is not sectioned has no such pages, for its holder too (404).
"""
from __future__ import annotations

from app.models import HumanTask

from .access_world import _child
from .conftest import complete, ready_task
from .journeys import CHECKLIST, CONSENT

SECTION = "section_k_voice"


def seed(runtime, world: dict) -> None:
    """A fourth CAF, at its assessment, with a draft that cannot be submitted yet (a date half typed)."""
    with runtime.db.session() as session:
        child_id = _child(session, world["authority"], "Sam", "Sections")
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=world["users"]["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    task = ready_task(runtime, episode_id, "complete_assessment")
    with runtime.db.session() as session:
        session.get(HumanTask, task.id).draft = {
            "data": {}, "raw": {}, "sections": {"section_a_administration": "in_progress"},
            "problems": {"section_a_administration": [
                {"field": "section_a_administration.date_completed", "message": "must include a month"}]}}
    world["sectioned"] = {"episode": episode_id, "task": task.id}


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case and episode_rule."""
    Case, episode_rule = rules.Case, rules.episode_rule
    task_id = world["sectioned"]["task"]
    holder = {"originator"}
    base = f"/tasks/{task_id}"
    found = {
        "assessment_sections.section": [Case("GET", f"{base}/sections/{SECTION}", episode_rule(holder))],
        "assessment_sections.save_section": [Case("POST", f"{base}/sections/{SECTION}", episode_rule(holder, 302),
                                                  {"action": "later", f"{SECTION}.child_comments": "Hello"})],
        "assessment_sections.check": [Case("GET", f"{base}/check", episode_rule(holder))],
        # Refused for the half-typed date: the holder is told (400), the task stays ready.
        "assessment_sections.submit": [Case("POST", f"{base}/check", episode_rule(holder, 400), {})],
    }
    for state in world["episodes"]:
        other = ids[state]["task"]
        found["assessment_sections.section"].append(Case("GET", f"/tasks/{other}/sections/{SECTION}",
                                                         episode_rule(set())))
        found["assessment_sections.check"].append(Case("GET", f"/tasks/{other}/check", episode_rule(set())))
    return found
