"""The practitioners' pages: task list, starting a CAF, task forms, the episode page, print, search requests."""
from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.models import AuditEvent, Child, Episode, HumanTask, SearchRequest
from tests.conftest import complete
from tests.journeys import CONSENT, prepare, start, to_delivery
from tests.web import browser, text_of


def signed_in(web, who="originator", username="olive"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def _count(runtime, model, *where):
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _audited(runtime, action) -> int:
    return _count(runtime, AuditEvent, AuditEvent.action == action)


def _task(runtime, episode_id, name) -> HumanTask:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name,
                                                      HumanTask.status == "ready"))


# ---------------------------------------------------------------- task list

def test_task_list_puts_child_protection_and_overdue_first_and_filters(web):
    runtime, people = web["runtime"], web["people"]
    plain = start(runtime, people)
    with runtime.db.session() as session:
        second = Child(given_names="Robin", family_name="Urgent", home_authority_id=people["authority"],
                       created_at=now())
        session.add(second)
        session.flush()
        second_id = second.id
    urgent = runtime.engine.start_episode(child_id=second_id, originator_id=people["originator"]).episode_id
    task = _task(runtime, urgent, "pre_assessment_checklist")
    client = signed_in(web)
    client.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf", "child_protection_concern": "true"})
    complete(runtime, urgent, "obtain_consent", CONSENT)
    page = text_of(client.get("/"))
    assert page.index("Robin Urgent") < page.index("Casey Child")
    assert "Child protection" in page

    with time_machine.travel(now() + timedelta(days=3)):
        overdue = text_of(signed_in(web).get("/?show=overdue"))
        assert "Robin Urgent" in overdue and "Overdue" in overdue and "Casey Child" not in overdue
    soon = text_of(client.get("/?show=soon"))
    assert "Robin Urgent" in soon and "Casey Child" not in soon
    assert "Casey Child" in text_of(client.get("/?show=mine"))
    assert "You have no tasks" in text_of(client.get("/?show=role"))
    other = signed_in(web, "lead", "leah")
    assert "You have no tasks" in text_of(other.get("/")), "others' tasks are not listed"
    assert plain


def test_role_tasks_are_claimed_and_released(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    with runtime.db.session() as session:
        # A task in the Administrator lane, as a process owner's procedure may add.
        row = session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id))
        row.lane, row.assigned_user_id = "Administrator", None
        task_id = row.id
    admin = signed_in(web, "admin", "adam")
    listed = text_of(admin.get("/?show=role"))
    assert "Claim" in listed
    practitioner = signed_in(web)
    assert practitioner.post(f"/tasks/{task_id}/claim", token_from="/").status_code == 404
    claimed = admin.post(f"/tasks/{task_id}/claim", token_from="/")
    assert claimed.status_code == 302 and claimed.location == f"/tasks/{task_id}"
    assert "Release this task" in text_of(admin.get(f"/tasks/{task_id}"))
    assert admin.post(f"/tasks/{task_id}/release", token_from="/").status_code == 302
    assert _task(runtime, episode_id, "pre_assessment_checklist").assigned_user_id is None
    assert _audited(runtime, "task_claimed") == 1 and _audited(runtime, "task_released") == 1


# ---------------------------------------------------------------- start a CAF

def test_search_then_record_and_start_a_caf(web):
    runtime = web["runtime"]
    client = signed_in(web)
    missing = client.post("/children/find", {"family_name": "", "postcode": "not a postcode"})
    assert missing.status_code == 400 and "Enter the child's family name" in text_of(missing)
    assert 'value="not a postcode"' in missing.get_data(as_text=True)
    found = client.post("/children/find", {"given_names": "Sky", "family_name": "New", "date_of_birth-day": "3",
                                           "date_of_birth-month": "4", "date_of_birth-year": "2018"})
    assert "No CAF was found" in text_of(found) and "Record the child and start a CAF" in text_of(found)
    form = {"count": "1", "child-0-given_names": "Sky", "child-0-family_name": "New",
            "child-0-date_of_birth-day": "3", "child-0-date_of_birth-month": "4",
            "child-0-date_of_birth-year": "2018", "child-0-nhs_number_missing": "not_known", "address": "",
            "postcode": "W9 2AB",
            "authority": str(web["people"]["authority"]), "action": "start"}
    bad = client.post("/children/new", form, token_from="/children/find")
    assert bad.status_code == 400 and "Enter the child's home address" in text_of(bad)
    assert 'value="Sky"' in bad.get_data(as_text=True), "what was typed is kept"
    started = client.post("/children/new", {**form, "address": "2 New Street"}, token_from="/children/find")
    assert started.status_code == 302
    episode_id = int(started.location.rsplit("/", 1)[1])
    page = text_of(client.get(started.location))
    assert "Sky New" in page and "Complete the pre-assessment checklist" in page
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).child.postcode == "W9 2AB"


def test_an_open_caf_shows_its_contact_instead_of_starting_another(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)  # Casey Child, by Olive, in the national index
    stranger = signed_in(web, "lead", "leah")
    found = stranger.post("/children/find", {"family_name": "child", "date_of_birth-day": "1",
                                             "date_of_birth-month": "5", "date_of_birth-year": "2015"})
    text = text_of(found)
    assert "A CAF is already open" in text and "Olive Origin" in text and "olive@testshire.test" in text
    assert "Record the child and start a CAF" not in text
    assert "1 Test Road" not in text, "only that it exists and whom to contact"
    again = stranger.post("/children/new", {
        "count": "1", "child-0-given_names": "Casey", "child-0-family_name": "Child",
        "child-0-date_of_birth-day": "1", "child-0-date_of_birth-month": "5", "child-0-date_of_birth-year": "2015",
        "child-0-nhs_number_missing": "not_known", "address": "1 Test Road", "postcode": "TE1 1ST",
        "authority": str(people["authority"]), "action": "start"},
        token_from="/children/find")
    assert again.status_code == 400 and "already open" in text_of(again)
    assert _count(runtime, Episode) == 1


def test_siblings_start_linked_episodes(web):
    runtime, people = web["runtime"], web["people"]
    client = signed_in(web)
    base = {"child-0-given_names": "Ada", "child-0-family_name": "Twin", "child-0-date_of_birth-day": "1",
            "child-0-date_of_birth-month": "2", "child-0-date_of_birth-year": "2017", "address": "3 Pair Road",
            "postcode": "W2 5RS", "authority": str(people["authority"]), "child-0-nhs_number_missing": "not_known",
            "child-1-nhs_number_missing": "detrimental"}
    added = client.post("/children/new", {**base, "count": "1", "action": "add"}, token_from="/children/find")
    html = added.get_data(as_text=True)
    assert 'name="child-1-given_names"' in html and 'value="Ada"' in html
    started = client.post("/children/new", {**base, "count": "2", "child-1-given_names": "Bo",
                                            "child-1-family_name": "Twin", "child-1-date_of_birth-day": "1",
                                            "child-1-date_of_birth-month": "2", "child-1-date_of_birth-year": "2017",
                                            "action": "start"}, token_from="/children/find")
    assert started.status_code == 302
    with runtime.db.session() as session:
        episodes = session.scalars(select(Episode)).all()
    assert len(episodes) == 2 and episodes[0].sibling_group and episodes[0].sibling_group == episodes[1].sibling_group
    page = text_of(client.get(started.location))
    assert "Brothers and sisters" in page and "Twin" in page


# ---------------------------------------------------------------- task forms

def test_a_form_error_keeps_what_was_typed_and_links_to_the_field(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    task = _task(runtime, episode_id, "pre_assessment_checklist")
    client = signed_in(web)
    page = client.get(f"/tasks/{task.id}")
    assert page.status_code == 200 and "Complete the pre-assessment checklist" in text_of(page)
    bad = client.post(f"/tasks/{task.id}", {"action": "submit", "healthy.answer": "no",
                                            "healthy.notes": "Often tired <script>alert(1)</script>"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "govuk-error-summary" in html
    assert 'href="#decision' in html
    assert "Often tired &lt;script&gt;" in html and "<script>alert(1)" not in html
    assert _task(runtime, episode_id, "pre_assessment_checklist") is not None, "nothing advanced"


def test_drafts_are_kept_and_shown_again(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    task = _task(runtime, episode_id, "complete_assessment")
    client = signed_in(web)
    form = client.get(f"/tasks/{task.id}/sections/section_b_child").get_data(as_text=True)
    assert 'value="Casey"' in form, "what eCAF knows is filled in"
    saved = client.post(f"/tasks/{task.id}", {
        "action": "save", "section_b_child.given_names": "Casey", "section_b_child.family_name": "Child",
        "section_k_voice.child_comments": "I like football",
        "section_b_child.date_of_birth.day": "31", "section_b_child.date_of_birth.month": "2",
        "section_b_child.date_of_birth.year": "2015"})
    assert saved.status_code == 302
    voice = client.get(f"/tasks/{task.id}/sections/section_k_voice").get_data(as_text=True)
    child = client.get(f"/tasks/{task.id}/sections/section_b_child").get_data(as_text=True)
    assert "I like football" in voice and 'value="31"' in child, "a draft keeps even a date still being typed"
    assert "Draft saved" in text_of(client.get("/"))


def test_a_submitted_form_moves_on_and_a_concern_shows_the_safeguarding_number(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    task = _task(runtime, episode_id, "pre_assessment_checklist")
    client = signed_in(web)
    done = client.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf",
                                             "child_protection_concern": "true"})
    consent = _task(runtime, episode_id, "obtain_consent")
    assert done.status_code == 302 and done.location == f"/tasks/{consent.id}"
    page = text_of(client.get(done.location))
    assert "0100 000 999" in page and "child-protection concern" in page
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).child_protection is True


def test_bad_posts_get_a_clear_answer_and_change_nothing(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    task = _task(runtime, episode_id, "pre_assessment_checklist")
    client = signed_in(web)
    unknown = client.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf", "is_admin": "yes"})
    assert unknown.status_code == 400 and "fields it does not have" in text_of(unknown)
    wrong_type = client.post(f"/tasks/{task.id}", {"action": "submit", "decision": "launch_rockets"})
    assert wrong_type.status_code == 400
    huge = client.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf",
                                             "healthy.notes": "x" * (3 * 1024 * 1024)})
    assert huge.status_code == 413
    too_long = client.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf",
                                                 "who_will_assess": "y" * 30000})
    assert too_long.status_code == 400
    assert _task(runtime, episode_id, "pre_assessment_checklist").status == "ready"
    assert client.post("/tasks/999999", {"action": "submit"}, token_from="/").status_code == 404


def test_someone_elses_task_and_episode_answer_404_like_missing_ones(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    task = _task(runtime, episode_id, "pre_assessment_checklist")
    other = signed_in(web, "lead", "leah")
    for path in (f"/tasks/{task.id}", f"/episodes/{episode_id}", f"/episodes/{episode_id}/print",
                 f"/episodes/{episode_id}/print.pdf", f"/episodes/{episode_id}/diagram.bpmn"):
        theirs, missing = other.get(path), other.get(path.replace(str(episode_id), "424242", 1)
                                                     if "episodes" in path else "/tasks/424242")
        assert theirs.status_code == missing.status_code == 404
        assert text_of(theirs) == text_of(missing)
    forged = other.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf"}, token_from="/")
    assert forged.status_code == 404
    assert _task(runtime, episode_id, "pre_assessment_checklist").status == "ready"
    assert _audited(runtime, "access_denied") >= 5


def test_repeating_rows_are_added_and_removed_without_losing_anything(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    task = _task(runtime, episode_id, "tac_meeting")
    client = signed_in(web)
    added = client.post(f"/tasks/{task.id}", {"action": "add:attendees", "attendees.0.name": "Pat Parent",
                                              "venue": "School"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and 'name="attendees.1.name"' in html and 'value="Pat Parent"' in html
    removed = client.post(f"/tasks/{task.id}", {"action": "remove:attendees:0", "attendees.0.name": "Pat Parent",
                                                "attendees.1.name": "Sam Support", "venue": "School"})
    html = removed.get_data(as_text=True)
    assert 'value="Sam Support"' in html and 'value="Pat Parent"' not in html and 'value="School"' in html


# ---------------------------------------------------------------- episode page, print, PDF

def test_the_episode_page_shows_the_record_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    client = signed_in(web)
    page = client.get(f"/episodes/{episode_id}")
    text = text_of(page)
    assert page.status_code == 200
    for expected in ("Casey Child", "1 May 2015", "Delivery", "Olive Origin", "Assessment (version 1)",
                     "Consent statement", "Assessment submitted", "Hold the Team Around the Child meeting"):
        assert expected in text, expected
    html = page.get_data(as_text=True)
    assert "data-bpmn-diagram" in html and "data-active=\"" in html and "tac_meeting" in html
    assert _audited(runtime, "episode_viewed") == 1
    diagram = client.get(f"/episodes/{episode_id}/diagram.bpmn")
    assert diagram.status_code == 200 and b"bpmndi:BPMNDiagram" in diagram.data
    with runtime.db.session() as session:
        from app.models import Artefact
        artefact_id = session.scalar(select(Artefact.id).where(Artefact.kind == "assessment"))
    record = text_of(client.get(f"/episodes/{episode_id}/records/{artefact_id}"))
    assert "Signed electronically by Olive Origin" in record and "I want to go to school more." in record


def test_print_and_pdf_show_the_signature_and_marking_and_are_audited(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    client = signed_in(web)
    printed = text_of(client.get(f"/episodes/{episode_id}/print"))
    assert "OFFICIAL – SENSITIVE" in printed and "Assessor: Olive Origin" in printed
    assert "Printed by Olive Origin" in printed
    pdf = client.get(f"/episodes/{episode_id}/print.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and len(pdf.data) > 5000
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert _audited(runtime, "episode_printed") == 1 and _audited(runtime, "episode_pdf_downloaded") == 1


# ---------------------------------------------------------------- search requests

def test_a_search_request_needs_a_child_and_holds_several(web):
    runtime = web["runtime"]
    client = signed_in(web)
    empty = client.post("/search-requests/new", {"action": "send", "reason": "Name spelt differently"})
    assert empty.status_code == 400 and "Add at least one child" in text_of(empty)
    for given in ("Ann", "Ben", "Cal"):
        added = client.post("/search-requests/new", {"action": "add", "reason": "Name spelt differently",
                                                     "given_names": given, "family_name": "Smyth"})
        assert added.status_code == 200
    bad = client.post("/search-requests/new", {"action": "add", "reason": "x", "given_names": "Dee",
                                               "family_name": "", "date_of_birth-day": "40"})
    assert bad.status_code == 400 and 'value="Dee"' in bad.get_data(as_text=True)
    removed = client.post("/search-requests/new", {"action": "remove-1", "reason": "Name spelt differently"})
    assert "Ben" not in text_of(removed) and "Cal Smyth" in text_of(removed)
    sent = client.post("/search-requests/new", {"action": "send", "reason": "Name spelt differently"})
    assert sent.status_code == 302
    page = text_of(client.get(sent.location))
    assert "Ann Smyth" in page and "Cal Smyth" in page and "Waiting for the administrator" in page
    assert "Waiting for the administrator" in text_of(client.get("/search-requests/"))
    other = signed_in(web, "lead", "leah")
    assert other.get(sent.location).status_code == 404
    with runtime.db.session() as session:
        assert len(session.scalars(select(SearchRequest)).one().children) == 2


def test_the_consent_journey_runs_through_the_pages(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    checklist = _task(runtime, episode_id, "pre_assessment_checklist")
    client.post(f"/tasks/{checklist.id}", {"action": "submit", "decision": "full_caf"})
    consent = _task(runtime, episode_id, "obtain_consent")
    answer = {"action": "submit", "decision": "given", "subject": "child", "given_by_name": CONSENT["given_by_name"],
              "relationship": "Mother", "has_parental_responsibility": "true", "consent_to_storage": "true",
              "consent_to_sharing": "true", "method": "written",
              "given_on.day": "5", "given_on.month": "1", "given_on.year": "2026"}
    done = client.post(f"/tasks/{consent.id}", answer)
    assert done.status_code == 302, text_of(done)
    assert _task(runtime, episode_id, "complete_assessment") is not None
