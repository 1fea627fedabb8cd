"""Task forms through the pages: follow-up questions without JavaScript, the lead professional chosen
from the people involved, a reopened draft saying when it was saved, evidence attached in the request form."""
from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timezone

import pytest
import time_machine
from sqlalchemy import func, select

from app import membership
from app.clock import now
from app.engine import repair
from app.engine.errors import FormInvalid
from app.models import Attachment, AuditEvent, Episode, HumanTask, User
from app.services import task_forms
from app.services.person_choices import NOT_A_LEAD
from app.services.service_requests import start_request
from app.web.draft_saved import saved_on
from tests.test_service_requests import send, teams, user  # noqa: F401 - teams is a fixture

from .conftest import complete, ready_task
from .journeys import CHECKLIST, CONSENT, assessment, prepare, start, to_delivery, today
from .test_admin_episodes import _police_officer
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
    assert unknown.status_code == 400 and NOT_A_LEAD in text_of(unknown)
    assert 'value="nobody@testshire.test"' in unknown.get_data(as_text=True)

    chosen = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": people["lead_email"]})
    assert chosen.status_code == 302
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        assert episode.lead_professional_id == people["lead"]


def _at_appointment(runtime, people, **consent) -> tuple[int, HumanTask]:
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", {**CONSENT, **consent})
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Leah Lead", "role": "Teacher", "email": people["lead_email"]}]})
    return episode_id, ready_task(runtime, episode_id, "appoint_lead_professional")


def _lead_and_status(runtime, episode_id: int) -> tuple:
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        return episode.lead_professional_id, episode.status


def test_someone_else_who_cannot_lead_is_refused_on_the_form_saying_nothing_of_strangers(web):
    runtime, people = web["runtime"], web["people"]
    officer = _police_officer(runtime, people)
    episode_id, task = _at_appointment(runtime, people, excluded_services=["police"])
    with runtime.db.session() as session:  # a member of the episode who cannot lead: locked out
        session.add(User(username="tess", email="tess@testshire.test", full_name="Tess Member", role="practitioner",
                         organisation_id=session.get(User, people["lead"]).organisation_id, created_at=now(),
                         locked_at=now(), **{k: getattr(session.get(User, people["lead"]), k) for k in (
                             "vetting_type", "vetting_reference", "vetting_checked_on", "training_completed_on")}))
        session.flush()
        tess = session.scalar(select(User).where(User.username == "tess"))
        membership.add(session, session.get(Episode, episode_id), tess, "tac_member", by_id=people["originator"])
    olive = _signed_in(web)
    page = text_of(olive.get(f"/tasks/{task.id}"))
    assert "Pat Constable" not in page and "Tess Member" not in page, "neither is offered"
    # An administrator, a practitioner the consent excludes, no account at all: one and the same answer.
    for typed in ("adam@testshire.test", officer, "nobody@testshire.test"):
        answer = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": "other",
                                                  "lead_professional_email.other": typed})
        assert answer.status_code == 400, typed
        assert NOT_A_LEAD in text_of(answer) and "There is a problem" in text_of(answer)
        assert f'value="{typed}"' in answer.get_data(as_text=True), "what was typed is kept"
        assert "cannot lead this CAF:" not in text_of(answer) and "only a practitioner" not in text_of(answer)
    # Someone working on the CAF: the reason is theirs to know.
    member = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": "other",
                                              "lead_professional_email.other": "TESS@testshire.test"})
    assert member.status_code == 400 and "Tess Member cannot lead this CAF: the account is locked" in text_of(member)
    assert _lead_and_status(runtime, episode_id) == (None, "open"), "nothing changed"
    assert ready_task(runtime, episode_id, "appoint_lead_professional").id == task.id


def test_a_lead_who_cannot_lead_by_the_time_of_the_step_is_refused_by_the_step(runtime, people):
    """The form was checked when sent; the step asks again in its own transaction: refused as a form
    error, never an episode in error."""
    officer = _police_officer(runtime, people)
    episode_id, task = _at_appointment(runtime, people, excluded_services=["police"])
    with runtime.db.session() as session:
        olive = session.get(User, people["originator"])
    for typed in (officer, "adam@testshire.test"):
        with pytest.raises(FormInvalid) as refused:
            task_forms.complete(runtime.engine, olive, episode_id, task.id, {"lead_professional_email": typed})
        assert refused.value.errors == [{"field": "lead_professional_email", "message": NOT_A_LEAD}]
    assert _lead_and_status(runtime, episode_id) == (None, "open")


def test_a_locked_account_is_neither_offered_nor_appointed_as_lead(web):
    runtime, people = web["runtime"], web["people"]
    episode_id, task = _at_appointment(runtime, people)
    olive = _signed_in(web)
    assert "Leah Lead" in text_of(olive.get(f"/tasks/{task.id}")), "offered while the account may be used"
    with runtime.db.session() as session:
        session.get(User, people["lead"]).locked_at = now()
    assert "Leah Lead" not in text_of(olive.get(f"/tasks/{task.id}"))
    answer = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": people["lead_email"]})
    assert answer.status_code == 400 and "Select lead professional from the list" in text_of(answer)
    typed = olive.post(f"/tasks/{task.id}", {"action": "submit", "lead_professional_email": "other",
                                             "lead_professional_email.other": people["lead_email"]})
    assert typed.status_code == 400 and NOT_A_LEAD in text_of(typed)
    assert _lead_and_status(runtime, episode_id) == (None, "open")


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


def _denials(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "access_denied"))


def test_evidence_is_not_attached_when_the_step_would_refuse_the_draft(runtime, people, teams, tmp_path):
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence")
    olive = browser(make_app(runtime))
    olive.sign_in("olive", give_credentials(runtime, people["originator"]))
    episode_id = prepare(runtime, people)
    start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    task = ready_task(runtime, episode_id, "request_form")
    olive.get(f"/tasks/{task.id}")
    repair.suspend(runtime.engine, episode_id, people["admin"], "investigating")
    answer = olive.post(f"/episodes/{episode_id}/requests/{task.id}/evidence",
                        {"needs": "Help with reading", "evidence_file": (io.BytesIO(PDF), "sus.pdf")},
                        content_type="multipart/form-data", token_from=f"/tasks/{task.id}")
    assert answer.status_code == 302
    said = text_of(olive.get(answer.location))
    assert "Nothing was attached and your answers were not saved" in said and "suspended" in said
    with runtime.db.session() as session:
        assert session.scalar(select(Attachment)) is None
        assert session.get(HumanTask, task.id).draft is None


def test_attaching_in_a_form_that_is_not_a_request_is_refused_and_audited(runtime, people, teams, tmp_path):
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence")
    olive = browser(make_app(runtime))
    olive.sign_in("olive", give_credentials(runtime, people["originator"]))
    first = prepare(runtime, people)
    checklist_episode = start(runtime, {**people, "child": _another_child(runtime, people)})
    checklist = ready_task(runtime, checklist_episode, "pre_assessment_checklist")
    start_request(runtime, first, user(runtime, people["originator"]), teams["psych"])
    request_task = ready_task(runtime, first, "request_form")
    for episode_id, task_id in ((checklist_episode, checklist.id), (checklist_episode, request_task.id)):
        before = _denials(runtime)
        answer = olive.post(f"/episodes/{episode_id}/requests/{task_id}/evidence",
                            {"evidence_file": (io.BytesIO(PDF), "x.pdf")}, content_type="multipart/form-data",
                            token_from=f"/tasks/{task_id}")
        assert answer.status_code == 404 and _denials(runtime) == before + 1, (episode_id, task_id)
    # A field the form does not have: the form again, saying so; nothing attached, nothing saved.
    forged = olive.post(f"/episodes/{first}/requests/{request_task.id}/evidence",
                        {"needs": "Help with reading", "forged": "x", "evidence_file": (io.BytesIO(PDF), "f.pdf")},
                        content_type="multipart/form-data", token_from=f"/tasks/{request_task.id}")
    assert forged.status_code == 400 and "sent with fields it does not have" in text_of(forged)
    assert "Help with reading" in forged.get_data(as_text=True)
    with runtime.db.session() as session:
        assert session.scalar(select(Attachment)) is None
        assert session.get(HumanTask, request_task.id).draft is None


def _another_child(runtime, people) -> int:
    from app.models import Child

    with runtime.db.session() as session:
        child = Child(given_names="Sam", family_name="Other", home_authority_id=people["authority"],
                      created_at=now())
        session.add(child)
        session.flush()
        return child.id
