"""Task forms through the pages: follow-up questions without JavaScript, the lead professional chosen
from the people involved, a reopened draft saying when it was saved, evidence attached in the request form."""
from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timezone

import time_machine
from sqlalchemy import select

from app.models import Attachment, Episode, HumanTask
from app.services.service_requests import start_request
from app.web.draft_saved import saved_on
from tests.test_service_requests import send, teams, user  # noqa: F401 - teams is a fixture

from .conftest import complete, ready_task
from .journeys import prepare, start, to_delivery, today
from .web import browser, give_credentials, make_app, text_of

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _signed_in(web, who="originator", username="olive"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def _submitted(runtime, task_id: int) -> dict:
    with runtime.db.session() as session:
        return session.get(HumanTask, task_id).submitted_data


# ---------------------------------------------------------------- follow-up questions without JavaScript


def test_concern_details_are_on_the_page_and_kept_only_when_the_concern_is_ticked(web):
    runtime, people = web["runtime"], web["people"]
    olive = _signed_in(web)
    task = ready_task(runtime, start(runtime, people), "pre_assessment_checklist")
    page = olive.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'data-aria-controls="conditional-child_protection_concern"' in page
    assert 'name="child_protection_details"' in page, "without JavaScript the follow-up is on show"

    details = "Bruise on the arm, seen Monday"
    saved = olive.post(f"/tasks/{task.id}", {"action": "save", "decision": "full_caf",
                                             "child_protection_details": details})
    assert saved.status_code == 302
    with runtime.db.session() as session:
        draft = session.get(HumanTask, task.id).draft
    assert "child_protection_details" not in draft["data"] and "child_protection_details" not in draft["raw"], \
        "ignored when the box is not ticked: not even kept in the draft"

    done = olive.post(f"/tasks/{task.id}", {"action": "submit", "decision": "full_caf",
                                            "child_protection_concern": "true", "child_protection_details": details})
    assert done.status_code == 302
    assert _submitted(runtime, task.id)["child_protection_details"] == details


def test_a_refusal_reason_is_dropped_when_consent_is_given(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist", {"decision": "full_caf"})
    task = ready_task(runtime, episode_id, "obtain_consent")
    olive = _signed_in(web)
    given = {"action": "submit", "decision": "given", "subject": "child", "given_by_name": "Pat Parent",
             "relationship": "Mother", "has_parental_responsibility": "true", "consent_to_storage": "true",
             "method": "written", "given_on.day": "5", "given_on.month": "1", "given_on.year": "2026",
             "refusal_reason": "Typed before the parent changed their mind", "competence_assessed": "true"}
    assert olive.post(f"/tasks/{task.id}", given).status_code == 302
    stored = _submitted(runtime, task.id)
    assert stored["decision"] == "given" and stored["has_parental_responsibility"] is True
    assert "refusal_reason" not in stored and "competence_assessed" not in stored, \
        "the refusal reason and a young person's competence do not apply to a parent's consent"


def test_the_teams_decision_asks_its_follow_up_only_for_its_answer(web, teams):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    eve = browser(web["app"])
    eve.sign_in("eve", give_credentials(runtime, teams["eve"]))
    path = f"/team/requests/{request_id}"

    page = eve.get(path).get_data(as_text=True)
    assert 'data-aria-controls="conditional-decision-2"' in page and 'name="question"' in page
    unanswered = eve.post(path, {"decision": "more_information"})
    assert unanswered.status_code == 400 and "Answer ‘What do you need to know?’" in text_of(unanswered), \
        "required when its answer is chosen"

    decided = eve.post(path, {"decision": "accept", "next_steps": "We call on Monday",
                              "question": "Left over from another answer"})
    assert decided.status_code == 302
    with runtime.db.session() as session:
        task = session.scalar(select(HumanTask).where(HumanTask.service_request_id == request_id,
                                                      HumanTask.name == "team_decision"))
        assert task.submitted_data == {"decision": "accept", "next_steps": "We call on Monday"}


# ---------------------------------------------------------------- the lead professional chosen, not typed


def test_the_lead_professional_is_chosen_from_the_meeting_and_the_people_involved(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True},
        {"name": "Leah Lead", "role": "Teacher", "email": people["lead_email"].upper()}]})
    task = ready_task(runtime, episode_id, "appoint_lead_professional")
    olive = _signed_in(web)

    page = olive.get(f"/tasks/{task.id}")
    shown = text_of(page)
    assert "Leah Lead" in shown and "Teacher, Test Primary (at the TAC meeting)" in shown
    assert "Olive Origin" in shown, "the people working on the CAF are offered too"
    assert "Pat Parent" not in shown, "someone without an eCAF account cannot lead"
    html = page.get_data(as_text=True)
    assert f'value="{people["lead_email"]}"' in html and "Someone else" in html
    assert 'name="lead_professional_name"' not in html and 'name="role"' not in html, "nothing to retype"

    unknown = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": "other",
                                               "lead_professional_email.other": "nobody@testshire.test"})
    assert unknown.status_code == 400 and "There is no eCAF user with this email address" in text_of(unknown)
    assert 'value="nobody@testshire.test"' in unknown.get_data(as_text=True)

    chosen = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": people["lead_email"]})
    assert chosen.status_code == 302
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        assert episode.lead_professional_id == people["lead"]


# ---------------------------------------------------------------- a reopened draft says when it was saved


def test_a_reopened_draft_says_when_it_was_saved_in_uk_time(web):
    runtime, people = web["runtime"], web["people"]
    task = ready_task(runtime, start(runtime, people), "pre_assessment_checklist")
    with time_machine.travel(datetime(2026, 12, 3, 16, 5, tzinfo=timezone.utc), tick=False):
        olive = _signed_in(web)
        assert "Draft saved" not in text_of(olive.get(f"/tasks/{task.id}"))
        saved = olive.post(f"/tasks/{task.id}", {"action": "save", "who_will_assess": "Me"})
        assert saved.status_code == 302
        page = text_of(olive.get(f"/tasks/{task.id}"))
    assert "Draft saved on 3 December 2026 at 4:05pm. It has not been submitted yet." in page


def test_draft_times_read_as_uk_local_time():
    assert saved_on({"saved_at": "2026-07-01T15:05:00+00:00"}) == "1 July 2026 at 4:05pm"  # summer time
    assert saved_on({"saved_at": "2026-12-03T12:00:00+00:00"}) == "3 December 2026 at midday"
    assert saved_on({"saved_at": "2026-12-03T00:30:00+00:00"}) == "3 December 2026 at 12:30am"
    assert saved_on({"data": {}}) is None and saved_on({"saved_at": "garbled"}) is None


# ---------------------------------------------------------------- evidence attached inside the request form


def test_evidence_is_attached_inside_the_request_form_keeping_what_was_typed(runtime, people, teams, tmp_path):
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence")
    app = make_app(runtime)
    olive = browser(app)
    olive.sign_in("olive", give_credentials(runtime, people["originator"]))
    episode_id = prepare(runtime, people)
    request_id = start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    task = ready_task(runtime, episode_id, "request_form")
    form = olive.get(f"/tasks/{task.id}").get_data(as_text=True)
    attach = f"/episodes/{episode_id}/requests/{task.id}/evidence"
    assert 'type="file"' in form and 'name="evidence_file"' in form
    assert f'formaction="{attach}"' in form and 'formenctype="multipart/form-data"' in form
    assert "Nothing is attached to this request yet" in text_of(olive.get(f"/tasks/{task.id}"))

    typed = {"needs": "Assessment of learning needs", "support_in_place": "SEN support at school",
             "evidence.0.requirement": "The school's SEN support plan", "action": "attach"}
    refused = olive.post(attach, {**typed, "evidence_file": (io.BytesIO(b"MZ\x90\x00"), "tool.exe")},
                         content_type="multipart/form-data", token_from=f"/tasks/{task.id}")
    assert refused.status_code == 400 and "There is a problem" in text_of(refused)
    assert 'id="evidence_file-error"' in refused.get_data(as_text=True)
    assert "Assessment of learning needs" in refused.get_data(as_text=True), "what was typed stays"

    attached = olive.post(attach, {**typed, "evidence_file": (io.BytesIO(PDF), "sen-plan.pdf")},
                          content_type="multipart/form-data", token_from=f"/tasks/{task.id}")
    assert attached.status_code == 303 and attached.location.endswith(f"/tasks/{task.id}#attach-evidence")
    back = olive.get(f"/tasks/{task.id}")
    assert "sen-plan.pdf is attached" in text_of(back) and "Draft saved on" in text_of(back)
    assert "sen-plan.pdf (download) (PDF, " in text_of(back), "listed in the form with its type and size"
    assert "Assessment of learning needs" in back.get_data(as_text=True), "the request was saved as a draft"
    with runtime.db.session() as session:
        kept = session.scalar(select(Attachment).where(Attachment.attached_to == f"service_request:{request_id}"))
        assert kept.filename == "sen-plan.pdf"

    # Submitting as usual: the (empty) file box posts its name, which is not a field the form lacks.
    sent = olive.post(f"/tasks/{task.id}", {**typed, "action": "submit", "evidence_file": "",
                                            "evidence.0.evidence": "Attached: sen-plan.pdf"})
    assert sent.status_code == 302, text_of(sent)


def test_only_the_requester_may_attach_through_the_request_form(runtime, people, teams, tmp_path):
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence")
    app = make_app(runtime)
    episode_id = prepare(runtime, people)
    start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    task = ready_task(runtime, episode_id, "request_form")
    leah = browser(app)
    leah.sign_in("leah", give_credentials(runtime, people["lead"]))
    answer = leah.post(f"/episodes/{episode_id}/requests/{task.id}/evidence",
                       {"evidence_file": (io.BytesIO(PDF), "x.pdf")}, content_type="multipart/form-data",
                       token_from="/")
    assert answer.status_code == 404
    with runtime.db.session() as session:
        assert session.scalar(select(Attachment)) is None


def test_a_file_over_the_limit_is_refused_in_the_request_form_keeping_what_was_typed(runtime, people, teams,
                                                                                    tmp_path):
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence",
                                         attachment_max_bytes=1024)
    olive = browser(make_app(runtime))
    olive.sign_in("olive", give_credentials(runtime, people["originator"]))
    episode_id = prepare(runtime, people)
    start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    task = ready_task(runtime, episode_id, "request_form")
    answer = olive.post(f"/episodes/{episode_id}/requests/{task.id}/evidence",
                        {"needs": "Help with reading", "evidence_file": (io.BytesIO(PDF + bytes(2048)), "big.pdf")},
                        content_type="multipart/form-data", token_from=f"/tasks/{task.id}")
    assert answer.status_code == 400
    assert "big.pdf is larger than 1 KB" in text_of(answer) and "Help with reading" in text_of(answer)
    with runtime.db.session() as session:
        assert session.scalar(select(Attachment)) is None
