"""The assessment as a task list: statuses, a page per section saved to the draft, Check your answers, Submit."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from app.config import PROJECT_ROOT
from app.forms import sections
from app import contributions
from app.engine.errors import NotPermitted, TaskAlreadyDone
from app.models import Artefact, AuditEvent, Episode, HumanTask, User
from app.services import task_forms
from app.web import deadlines
from tests.conftest import complete, ready_task
from tests.journeys import assessment, prepare, today
from tests.web import browser, text_of

FORMS = PROJECT_ROOT / "processes" / "forms"
ADMIN, CHILD, VOICE = "section_a_administration", "section_b_child", "section_k_voice"


def _signed_in(web, who="originator", username="olive"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def _draft(runtime, task_id: int) -> dict:
    with runtime.db.session() as session:
        return session.get(HumanTask, task_id).draft or {}


def _statuses(html: str) -> dict[str, str]:
    """Section title -> the status shown beside it in the task list."""
    found = {}
    for item in re.findall(r'<li class="govuk-task-list__item.*?</li>', html, flags=re.S):
        title = re.search(r'govuk-task-list__link[^>]*>\s*(.*?)\s*</a>', item, flags=re.S).group(1)
        status = re.sub(r"<[^>]+>", " ", item.split('govuk-task-list__status', 1)[1].split(">", 1)[1])
        found[title.replace("&amp;", "&")] = " ".join(status.split())
    return found


def _start(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    return episode_id, ready_task(runtime, episode_id, "complete_assessment")


def test_the_shipped_assessment_is_sectioned_and_other_forms_keep_their_single_page():
    schema = json.loads((FORMS / "assessment.schema.json").read_text())
    ui = json.loads((FORMS / "assessment.uischema.json").read_text())
    assert sections.is_sectioned(schema, ui)
    names = [s.name for s in sections.sections(schema, ui)]
    assert list(dict.fromkeys(n.split(".")[0] for n in names)) == list(schema["properties"])
    # H asks for its own parts to be sections: H1, H2 and H3 each get a page.
    parts = ("h1_development", "h2_parents_carers", "h3_family_environment")
    assert [n for n in names if n.startswith("section_h")] == [f"section_h_strengths_needs.{p}" for p in parts]
    assert not sections.is_sectioned(schema, {k: v for k, v in ui.items() if k != "ui:sections"})
    checklist = json.loads((FORMS / "pre_assessment_checklist.schema.json").read_text())
    assert not sections.is_sectioned(checklist, {"ui:sections": True}), "only forms made of sections"
    # Consent is recorded in its own step: the assessment no longer asks for it again.
    assert "consent_confirmed" not in json.dumps(schema)


def test_the_task_list_shows_each_section_and_its_status(web):
    episode_id, task = _start(web)
    olive = _signed_in(web)
    page = olive.get(f"/tasks/{task.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "govuk-task-list" in html
    statuses = _statuses(html)
    assert list(statuses)[:2] == ["A. Administration", "B. Identifying details of the child"]
    assert len(statuses) == 14 and set(statuses.values()) == {"Not started"}
    assert "1. A." not in text_of(page) and "You have completed 0 of 14 sections." in text_of(page)
    assert f'href="/tasks/{task.id}/sections/{CHILD}"' in html and f'href="/tasks/{task.id}/check"' in html
    # The deadline reads as on the task list: how long is left, then when in UK time.
    assert f"{deadlines.deadline(task.due_at, capital=True)}." in text_of(page)
    assert len(re.findall(r"Due in 3[45] days, on \w+day \d+ \w+( \d{4})? at ", text_of(page))) == 1
    assert "Due by" not in text_of(page)

    # One section saved and checked, another kept for later.
    done = olive.post(f"/tasks/{task.id}/sections/{VOICE}", {"action": "continue", f"{VOICE}.child_comments": "Hi"})
    assert done.status_code == 302 and done.location == f"/tasks/{task.id}"
    later = olive.post(f"/tasks/{task.id}/sections/{CHILD}", {"action": "later", f"{CHILD}.family_name": ""})
    assert later.status_code == 302
    statuses = _statuses(olive.get(f"/tasks/{task.id}").get_data(as_text=True))
    assert statuses["K. Voice of the child and family"] == "Completed"
    assert statuses["B. Identifying details of the child"] == "In progress"
    assert statuses["A. Administration"] == "Not started"


def test_a_section_with_errors_keeps_what_was_typed_and_saves_nothing(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    page = olive.get(f"/tasks/{task.id}/sections/{CHILD}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'value="Casey"' in html, "filled in from the child's record"
    assert "<h1 class=\"govuk-heading-l\">B. Identifying details of the child</h1>" in html
    before = html.split('name="section_b_child.ethnicity"')[0]
    assert "<select" in before[-300:], "ethnicity is a select with its own label, not 19 radios"
    answer = olive.post(f"/tasks/{task.id}/sections/{CHILD}", {
        "action": "continue", f"{CHILD}.given_names": "Casey", f"{CHILD}.family_name": "",
        f"{CHILD}.date_of_birth.day": "31", f"{CHILD}.date_of_birth.month": "2", f"{CHILD}.date_of_birth.year": "2015",
        f"{CHILD}.religion": "Quaker"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "govuk-error-summary" in html
    assert "Enter family name" in text_of(answer)
    assert "Date of birth or expected date of delivery must be a real date" in text_of(answer)
    assert 'href="#section_b_child-family_name"' in html
    assert 'value="Quaker"' in html and 'value="31"' in html, "what was typed is kept"
    assert text_of(answer).startswith("Error:") or "<title>Error:" in html
    assert _draft(runtime, task.id) == {}, "nothing saved"


def test_a_section_saves_to_the_draft_and_shows_again_as_saved(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    olive.post(f"/tasks/{task.id}/sections/{VOICE}", {"action": "continue", f"{VOICE}.child_comments": "Hi"})
    saved = olive.post(f"/tasks/{task.id}/sections/{ADMIN}", {
        "action": "continue", f"{ADMIN}.date_started.day": "2", f"{ADMIN}.date_started.month": "3",
        f"{ADMIN}.date_started.year": "2026", f"{ADMIN}.existing_caf_check_notes": "None found"})
    assert saved.status_code == 302
    draft = _draft(runtime, task.id)
    assert draft["data"][ADMIN]["date_started"] == "2026-03-02"
    assert draft["data"][ADMIN]["existing_caf_check_notes"] == "None found"
    assert draft["data"][ADMIN]["reference_number"], "the system's own answers are kept with it"
    assert draft["data"][VOICE] == {"child_comments": "Hi"}, "the other sections stay as they were"
    assert draft["sections"] == {VOICE: "completed", ADMIN: "completed"}
    again = olive.get(f"/tasks/{task.id}/sections/{ADMIN}").get_data(as_text=True)
    assert "None found" in again and 'value="2026"' in again
    # A half-typed date can be kept for later, but not submitted.
    olive.post(f"/tasks/{task.id}/sections/{ADMIN}", {
        "action": "later", f"{ADMIN}.date_started.day": "2", f"{ADMIN}.date_started.month": "3",
        f"{ADMIN}.date_started.year": "2026", f"{ADMIN}.date_completed.day": "40"})
    assert 'value="40"' in olive.get(f"/tasks/{task.id}/sections/{ADMIN}").get_data(as_text=True)
    refused = olive.post(f"/tasks/{task.id}/check", {})
    assert refused.status_code == 400 and "Date assessment completed must include a month and year" in text_of(refused)
    assert f'href="/tasks/{task.id}/sections/{ADMIN}?return=check#section_a_administration-date_completed-day"' \
        in refused.get_data(as_text=True)
    assert ready_task(runtime, episode_id, "complete_assessment").id == task.id


def test_a_section_saved_from_another_tab_meanwhile_is_not_lost(web, monkeypatch):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    real_save = task_forms.save_draft

    def another_tab_first(engine, user, episode, task_id, draft):
        # The voice section is saved from another tab after this page read the draft, before it saves.
        real_save(engine, user, episode, task_id, lambda current: sections.with_section(
            current, VOICE, {VOICE: {"child_comments": "From the other tab"}}, {}, sections.COMPLETED))
        real_save(engine, user, episode, task_id, draft)

    monkeypatch.setattr(task_forms, "save_draft", another_tab_first)
    assert olive.post(f"/tasks/{task.id}/sections/{ADMIN}", {
        "action": "later", f"{ADMIN}.existing_caf_check_notes": "None found"}).status_code == 302
    draft = _draft(runtime, task.id)
    assert draft["data"][VOICE] == {"child_comments": "From the other tab"}, "the other tab's section stays"
    assert draft["data"][ADMIN]["existing_caf_check_notes"] == "None found"
    assert draft["sections"] == {VOICE: "completed", ADMIN: "in_progress"}


def test_a_contribution_taken_in_keeps_the_authors_sections_as_they_were(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    conclusions = "section_i_conclusions"
    assert olive.post(f"/tasks/{task.id}/sections/{conclusions}", {
        "action": "continue", f"{conclusions}.key_strengths": "Loves art"}).status_code == 302
    olive.post(f"/tasks/{task.id}/sections/{CHILD}", {"action": "later", f"{CHILD}.given_names": "Casey"})
    before = _draft(runtime, task.id)
    with runtime.db.session() as session:
        taken = contributions.taken_into_draft(before, session.get(Episode, episode_id),
                                               {VOICE: {"child_comments": "I like art"}})
    assert taken["sections"] == {conclusions: "completed", CHILD: "in_progress", VOICE: "in_progress"}, \
        "the author's statuses stay; the contributed section is for the author to check"
    assert taken["data"][conclusions] == {"key_strengths": "Loves art"} and taken["data"][CHILD] == before["data"][CHILD]
    assert taken["data"][VOICE] == {"child_comments": "I like art"}
    assert taken["raw"][VOICE]["child_comments"] == "I like art", "the section page shows what was taken in"
    assert taken["raw"][CHILD] == before["raw"][CHILD], "what the author was half way through typing stays"


def test_the_consent_section_shows_the_consent_recorded_and_does_not_ask_again(web):
    episode_id, task = _start(web)
    page = _signed_in(web).get(f"/tasks/{task.id}/sections/section_l_consent")
    shown = text_of(page)
    assert page.status_code == 200 and "Consent as recorded" in shown
    assert "Consent given" in shown and "Pat Parent, Mother" in shown and "Police" in shown
    assert "consent_confirmed" not in page.get_data(as_text=True)


def test_a_change_link_returns_to_check_your_answers_and_submit_completes_the_task(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    olive.post(f"/tasks/{task.id}/sections/{VOICE}", {"action": "continue", f"{VOICE}.child_comments": "Hi"})
    check = olive.get(f"/tasks/{task.id}/check")
    html = check.get_data(as_text=True)
    assert check.status_code == 200 and "Check your answers" in text_of(check)
    assert "Hi" in text_of(check) and "Casey" in text_of(check), "saved answers and what the record holds"
    change = f"/tasks/{task.id}/sections/{VOICE}?return=check"
    assert f'href="{change}"' in html.replace("&amp;", "&")
    form = olive.get(change).get_data(as_text=True)
    assert "Back to check your answers" in form and f'action="{change}"' in form.replace("&amp;", "&")
    changed = olive.post(change, {"action": "continue", f"{VOICE}.child_comments": "I like school now"})
    assert changed.status_code == 302 and changed.location == f"/tasks/{task.id}/check"
    assert "I like school now" in text_of(olive.get(f"/tasks/{task.id}/check"))

    done = olive.post(f"/tasks/{task.id}/check", {})
    assert done.status_code == 302
    with runtime.db.session() as session:
        assert session.get(HumanTask, task.id).status == "completed"
        stored = session.scalar(select(Artefact).where(Artefact.episode_id == episode_id,
                                                       Artefact.kind == "assessment"))
    assert stored.data[VOICE] == {"child_comments": "I like school now"}
    assert stored.data[ADMIN]["date_started"] == today().isoformat(), "filled in by the system"
    assert stored.data[CHILD]["given_names"] == "Casey"
    assert "is complete" in text_of(olive.get(done.location))


def _denials(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "access_denied"))


def test_a_section_saved_after_the_task_was_submitted_from_another_tab_says_so(web, monkeypatch):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    real_save = task_forms.save_draft

    def submitted_from_another_tab_first(engine, user, episode, task_id, draft):
        complete(runtime, episode_id, "complete_assessment", assessment())
        real_save(engine, user, episode, task_id, draft)

    monkeypatch.setattr(task_forms, "save_draft", submitted_from_another_tab_first)
    before = _denials(runtime)
    answer = olive.post(f"/tasks/{task.id}/sections/{VOICE}", {"action": "continue", f"{VOICE}.child_comments": "Late"})
    assert answer.status_code == 302 and _denials(runtime) == before, "the task's own user is not refused as a stranger"
    said = text_of(olive.get(answer.location))
    assert "Your answers were not saved" in said and "was already completed by Olive Origin" in said


def test_a_task_done_meanwhile_is_told_only_to_its_own_user(web):
    """The step says the task was completed only to whoever it was for; anyone else learns nothing."""
    runtime, people = web["runtime"], web["people"]
    episode_id, task = _start(web)
    complete(runtime, episode_id, "complete_assessment", assessment())
    with runtime.db.session() as session:
        olive, leah = session.get(User, people["originator"]), session.get(User, people["lead"])
    with pytest.raises(TaskAlreadyDone, match="already completed by Olive Origin"):
        task_forms.save_draft(runtime.engine, olive, episode_id, task.id, {"data": {}})
    with pytest.raises(NotPermitted):
        task_forms.save_draft(runtime.engine, leah, episode_id, task.id, {"data": {}})
    with pytest.raises(NotPermitted):
        task_forms.complete(runtime.engine, leah, episode_id, task.id, assessment())


def test_a_single_page_save_of_the_sectioned_form_keeps_its_sections(web):
    """A tab opened on the whole form (or a forged post) merges what it sent section by section."""
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    olive.post(f"/tasks/{task.id}/sections/{VOICE}", {"action": "continue", f"{VOICE}.child_comments": "Hi"})
    olive.post(f"/tasks/{task.id}/sections/{ADMIN}", {"action": "later", f"{ADMIN}.date_completed.day": "40"})
    conclusions = "section_i_conclusions"
    answer = olive.post(f"/tasks/{task.id}", {"action": "save", f"{conclusions}.key_strengths": "From a stale tab"},
                        token_from=f"/tasks/{task.id}")
    assert answer.status_code == 302
    draft = _draft(runtime, task.id)
    assert draft["data"][VOICE] == {"child_comments": "Hi"}, "a section not posted keeps its answers"
    assert draft["data"][conclusions]["key_strengths"] == "From a stale tab"
    assert draft["sections"] == {VOICE: "completed", ADMIN: "in_progress", conclusions: "in_progress"}
    assert draft["problems"][ADMIN], "the half-typed date saved for later still stops the submission"


def test_someone_else_cannot_open_or_save_the_sections(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    leah = _signed_in(web, "lead", "leah")
    for path in (f"/tasks/{task.id}", f"/tasks/{task.id}/sections/{CHILD}", f"/tasks/{task.id}/check"):
        assert leah.get(path).status_code == 404
    forged = leah.post(f"/tasks/{task.id}/sections/{CHILD}", {"action": "later", f"{CHILD}.family_name": "X"},
                       token_from="/")
    assert forged.status_code == 404
    assert leah.post(f"/tasks/{task.id}/check", {}, token_from="/").status_code == 404
    assert _draft(runtime, task.id) == {} and ready_task(runtime, episode_id, "complete_assessment").id == task.id
    olive = _signed_in(web)
    assert olive.get(f"/tasks/{task.id}/sections/no_such_section").status_code == 404


def test_rows_are_added_within_a_section_without_saving(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    path = f"/tasks/{task.id}/sections/section_d_parents_carers"
    added = olive.post(path, {"action": "add:section_d_parents_carers.parents_carers",
                              "section_d_parents_carers.parents_carers.0.name": "Pat Parent"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and 'value="Pat Parent"' in html
    assert "Parent or carer 2" in text_of(added) or "parents_carers.1." in html
    assert _draft(runtime, task.id) == {}
    unknown = olive.post(path, {"action": "continue", "section_b_child.family_name": "Sneaky"})
    assert unknown.status_code == 400 and "fields it does not have" in text_of(unknown)


def test_a_part_of_a_section_is_a_page_of_its_own(web):
    runtime = web["runtime"]
    episode_id, task = _start(web)
    olive = _signed_in(web)
    part = "section_h_strengths_needs.h2_parents_carers"
    page = olive.get(f"/tasks/{task.id}/sections/{part}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "H2. Parents and carers" in text_of(page)
    assert "section_h_strengths_needs.h1_development." not in html, "only this part's questions"
    name = f"{part}.basic_care_safety_protection.needs"
    assert f'name="{name}"' in html
    assert olive.post(f"/tasks/{task.id}/sections/{part}", {"action": "continue", name: "Meals"}).status_code == 302
    olive.post(f"/tasks/{task.id}/sections/section_h_strengths_needs.h1_development", {"action": "later"})
    draft = _draft(runtime, task.id)
    meals = {"basic_care_safety_protection": {"needs": "Meals"}}
    assert draft["data"]["section_h_strengths_needs"] == {"h2_parents_carers": meals}, "H1 saved empty: nothing"
    statuses = _statuses(olive.get(f"/tasks/{task.id}").get_data(as_text=True))
    assert statuses["H2. Parents and carers"] == "Completed"
    assert statuses["H1. Development of the unborn baby, infant, child or young person"] == "In progress"
    assert "Meals" in text_of(olive.get(f"/tasks/{task.id}/check"))
    assert olive.post(f"/tasks/{task.id}/check", {}).status_code == 302
    with runtime.db.session() as session:
        stored = session.scalar(select(Artefact).where(Artefact.episode_id == episode_id,
                                                       Artefact.kind == "assessment"))
    assert stored.data["section_h_strengths_needs"]["h2_parents_carers"] == meals
