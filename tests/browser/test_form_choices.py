"""Task forms in a real browser: follow-up questions revealed by their answer, the lead professional
chosen from the people at the meeting, a reopened draft; screenshots at desktop and phone width."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.clock import now

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("ECAF_SCREENSHOTS")  # a folder to keep screenshots in, when asked for


def _shoot(page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _episode(live_server, family_name: str, originator: str = "priya.shah") -> int:
    """A new child's episode started by `originator` (each test signs in as someone else: an
    authenticator code is accepted once)."""
    from sqlalchemy import select

    from app.models import Child, Organisation, User

    runtime = live_server.runtime
    with runtime.db.session() as session:
        school = session.scalar(select(Organisation).where(Organisation.kind == "school"))
        starter = session.scalar(select(User).where(User.username == originator))
        child = Child(given_names="Robin", family_name=family_name, date_of_birth=date(2016, 5, 5),
                      postcode="W9 1AA", home_authority_id=school.authority_id, created_at=now())
        session.add(child)
        session.flush()
        child_id, starter_id = child.id, starter.id
    return runtime.engine.start_episode(child_id=child_id, originator_id=starter_id).episode_id


def _task_id(live_server, episode_id: int, name: str) -> int:
    from tests.conftest import ready_task

    return ready_task(live_server.runtime, episode_id, name).id


def test_follow_up_questions_appear_under_the_answer_that_needs_them(page, axe_check, live_server):
    episode_id = _episode(live_server, "Reveal")
    sign_in(page, axe_check, live_server, "priya.shah")
    page.goto(f"{live_server.url}/tasks/{_task_id(live_server, episode_id, 'pre_assessment_checklist')}")
    details = page.get_by_label("Details of the child protection concern")
    expect(details).to_be_hidden()
    axe_check(page)
    page.get_by_label("I have a child protection concern").check()
    expect(details).to_be_visible()
    details.fill("Bruise on the arm, seen on Monday")
    axe_check(page)
    _shoot(page, "checklist-concern")
    page.get_by_label("Start a full common assessment (CAF)").check()
    page.get_by_role("button", name="Save as draft").click()

    # Reopened: the draft says when it was saved, and the concern's details are still showing.
    expect(page.get_by_test_id("draft-saved")).to_contain_text("Draft saved on")
    expect(page.get_by_label("Details of the child protection concern")).to_have_value(
        "Bruise on the arm, seen on Monday")
    axe_check(page)
    _shoot(page, "checklist-draft")
    page.get_by_role("button", name="Submit").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Obtain consent")
    reason = page.get_by_label("Reason for refusal")
    expect(reason).to_be_hidden()
    page.get_by_label("Consent refused").check()
    expect(reason).to_be_visible()
    # Screen readers hear that the radio revealed a question (GOV.UK Frontend's aria-expanded, kept).
    expect(page.get_by_label("Consent refused")).to_have_attribute("aria-expanded", "true")
    page.get_by_label("Consent given").check()
    expect(reason).to_be_hidden()
    page.get_by_label("The young person, consenting for themselves").check()
    expect(page.get_by_label("Young person's competence assessed")).to_be_visible()
    expect(page.get_by_role("group", name="Has parental responsibility")).to_be_hidden()
    axe_check(page)
    _shoot(page, "consent-reveals")


def test_the_lead_professional_is_picked_from_the_people_at_the_meeting(page, axe_check, live_server):
    from tests.conftest import complete
    from tests.journeys import CHECKLIST, CONSENT, assessment, today

    runtime = live_server.runtime
    episode_id = _episode(live_server, "Chooser", "sam.reid")
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True},
        {"name": "Tom Okafor", "role": "Health visitor", "email": "tom.okafor@westminster.example"}]})
    sign_in(page, axe_check, live_server, "sam.reid")
    page.goto(f"{live_server.url}/tasks/{_task_id(live_server, episode_id, 'appoint_lead_professional')}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Appoint the lead professional")
    other = page.get_by_label("Email address they sign in to eCAF with")
    expect(other).to_be_hidden()
    page.get_by_label("Someone else").check()
    expect(other).to_be_visible()
    axe_check(page)
    page.get_by_label("Tom Okafor").check()
    expect(other).to_be_hidden()
    _shoot(page, "lead-professional")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("“Appoint the lead professional” is complete.")).to_be_visible()
    with runtime.db.session() as session:
        from app.models import Episode

        assert session.get(Episode, episode_id).lead_professional.full_name == "Tom Okafor"


def test_evidence_is_attached_without_leaving_the_request_form(page, axe_check, live_server, tmp_path):
    from sqlalchemy import select

    from app.models import Service, User
    from app.services.service_requests import start_request
    from tests.conftest import complete
    from tests.journeys import CHECKLIST, CONSENT

    runtime = live_server.runtime
    episode_id = _episode(live_server, "Evidence", "tom.okafor")
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    with runtime.db.session() as session:
        tom = session.scalar(select(User).where(User.username == "tom.okafor"))
        tom.organisation  # what the policy reads, loaded before the session closes
        session.expunge(tom)
        service_id = session.scalar(select(Service.id).where(Service.name == "Educational Psychology"))
    start_request(runtime, episode_id, tom, service_id)
    sign_in(page, axe_check, live_server, "tom.okafor")
    page.goto(f"{live_server.url}/tasks/{_task_id(live_server, episode_id, 'request_form')}")
    page.get_by_label("What does the child need from this service?").fill("An assessment of Robin's reading")
    expect(page.get_by_test_id("no-request-evidence")).to_be_visible()
    axe_check(page)
    _shoot(page, "request-form")

    letter = tmp_path / "school-letter.pdf"
    letter.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    page.locator("input[type=file][name=evidence_file]").set_input_files(str(letter))
    page.get_by_role("button", name="Attach the file").click()
    expect(page.get_by_test_id("request-evidence")).to_contain_text("school-letter.pdf")
    expect(page.get_by_label("What does the child need from this service?")).to_have_value(
        "An assessment of Robin's reading")
    axe_check(page)
    _shoot(page, "request-form-attached")
