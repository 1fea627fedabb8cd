"""Service requests through the pages: the practitioner asks and attaches evidence, the team decides."""
from __future__ import annotations

import dataclasses
import io

from sqlalchemy import select

from app.models import Attachment, AuditEvent, Episode, HumanTask, ServiceRequest
from tests.test_service_requests import teams  # noqa: F401 - the fixture

from .journeys import prepare
from .web import browser, give_credentials, make_app, text_of

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _signed_in(app, runtime, user_id: int, username: str):
    client = browser(app)
    client.sign_in(username, give_credentials(runtime, user_id))
    return client


def _app(runtime, tmp_path):
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=tmp_path / "evidence")
    return make_app(runtime)


def _request_task(runtime, episode_id) -> HumanTask:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                      HumanTask.name == "request_form", HumanTask.status == "ready"))


def test_a_request_with_evidence_goes_to_the_team_who_accepts_it(runtime, people, teams, tmp_path):
    episode_id = prepare(runtime, people)
    app = _app(runtime, tmp_path)
    olive = _signed_in(app, runtime, people["originator"], "olive")

    page = olive.get(f"/episodes/{episode_id}/service-requests")
    assert page.status_code == 200 and "Educational Psychology" in text_of(page)
    started = olive.post(f"/episodes/{episode_id}/service-requests", {"service": str(teams["psych"])})
    task = _request_task(runtime, episode_id)
    assert started.status_code == 302 and started.location.endswith(f"/tasks/{task.id}")

    form = olive.get(f"/tasks/{task.id}")
    shown = text_of(form)
    assert "Request to Educational Psychology" in shown and "The school's SEN support plan" in shown
    # The evidence row for what the service asks for is there already.
    assert 'value="The school&#39;s SEN support plan"' in form.get_data(as_text=True)

    # Sent without the evidence: the form says what is missing and keeps what was typed.
    typed = {"needs": "Assessment of learning needs", "support_in_place": "SEN support at school",
             "evidence.0.requirement": "The school's SEN support plan", "action": "submit"}
    refused = olive.post(f"/tasks/{task.id}", typed)
    assert refused.status_code == 400
    assert "asks for evidence this request does not give: The school's SEN support plan" in text_of(refused)
    assert "Assessment of learning needs" in refused.get_data(as_text=True)

    # Attach the plan to this request, then send with the evidence named.
    key = f"service_request:{task.service_request_id}"
    attached = olive.post(f"/episodes/{episode_id}/attachments?attached_to={key}",
                          {"file": (io.BytesIO(PDF), "sen-plan.pdf")}, content_type="multipart/form-data",
                          token_from=f"/episodes/{episode_id}/attachments?attached_to={key}")
    assert attached.status_code == 303
    sent = olive.post(f"/tasks/{task.id}", {**typed, "evidence.0.evidence": "Attached: sen-plan.pdf"})
    assert sent.status_code == 302
    with runtime.db.session() as session:
        request = session.get(ServiceRequest, task.service_request_id)
        assert request.status == "sent"
        attachment = session.scalar(select(Attachment).where(Attachment.attached_to == key))
        assert attachment.filename == "sen-plan.pdf"

    eve = _signed_in(app, runtime, teams["eve"], "eve")
    assert "1 request to your service is waiting for a decision" in text_of(eve.get("/"))
    inbox = eve.get("/team/requests")
    assert inbox.status_code == 200 and "Casey" in text_of(inbox)
    opened = eve.get(f"/team/requests/{task.service_request_id}")
    assert "Assessment of learning needs" in text_of(opened) and "sen-plan.pdf" in text_of(opened)
    download = eve.get(f"/team/requests/{task.service_request_id}/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment")

    # Another service's team sees nothing of it.
    dan = _signed_in(app, runtime, teams["dan"], "dan")
    assert "Casey" not in text_of(dan.get("/team/requests"))
    assert dan.get(f"/team/requests/{task.service_request_id}").status_code == 404
    assert dan.post(f"/team/requests/{task.service_request_id}", {"decision": "accept"},
                    token_from="/team/requests").status_code == 404

    # Declining without a reason keeps the choice; accepting records it.
    path = f"/team/requests/{task.service_request_id}"
    no_reason = eve.post(path, {"decision": "decline"})
    assert no_reason.status_code == 400 and "Enter reason" in text_of(no_reason)
    accepted = eve.post(path, {"decision": "accept", "next_steps": "We will call the family this week"})
    assert accepted.status_code == 302
    with runtime.db.session() as session:
        assert session.get(ServiceRequest, task.service_request_id).status == "accepted"
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == teams["eve"])))
        assert {"service_request_opened", "attachment_downloaded", "task_completed"} <= actions
    people_page = olive.get(f"/episodes/{episode_id}/people")
    assert "Eve Psych" in text_of(people_page)


def test_a_closed_episode_cannot_ask_and_says_why(runtime, people, teams, tmp_path):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        session.get(Episode, episode_id).status = "closed"
    olive = _signed_in(_app(runtime, tmp_path), runtime, people["originator"], "olive")
    answer = olive.post(f"/episodes/{episode_id}/service-requests", {"service": str(teams["psych"])},
                        token_from="/")
    assert answer.status_code == 400 and "a closed episode cannot ask a service for help" in text_of(answer)
    with runtime.db.session() as session:
        assert session.scalar(select(ServiceRequest)) is None


def test_an_administrator_switches_contributions_on_with_a_reason(runtime, people, tmp_path):
    from app.models import Authority

    adam = _signed_in(_app(runtime, tmp_path), runtime, people["admin"], "adam")
    refused = adam.post("/admin/settings", {"contributions": "on"})
    assert refused.status_code == 400 and "Enter the reason for the change" in text_of(refused)
    assert 'value="on" checked' in refused.get_data(as_text=True)
    done = adam.post("/admin/settings", {"contributions": "on", "reason": "Pilot with the health visitors"})
    assert done.status_code == 302
    with runtime.db.session() as session:
        assert session.get(Authority, people["authority"]).contributors_enabled
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "authority_settings_changed"))
        assert event.actor_id == people["admin"]
