"""An administrator in a real browser: from the dashboard to an errored episode, a retry with
corrected data, and the count going down; every page checked with axe."""
from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect

from app.clock import now

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser
OFFICER = "pc.jones@westminster.example"


def errored_episode(live_server) -> str:
    """The family's consent excludes the police; the team names a police officer as lead professional."""
    from sqlalchemy import select

    from app.models import Child, Organisation, User
    from tests.conftest import VETTED, complete
    from tests.journeys import CHECKLIST, CONSENT, assessment, today

    runtime = live_server.runtime
    with runtime.db.session() as session:
        police = session.scalar(select(Organisation).where(Organisation.kind == "police"))
        session.add(User(username="pc.jones", email=OFFICER, full_name="PC Jones", role="practitioner",
                         organisation_id=police.id, created_at=now(), **VETTED))
        priya = session.scalar(select(User).where(User.username == "priya.shah"))
        child = Child(given_names="Kit", family_name="Marlowe", date_of_birth=date(2016, 5, 5), postcode="W9 1AA",
                      home_authority_id=police.authority_id, created_at=now())
        session.add(child)
        session.flush()
        child_id, priya_id = child.id, priya.id
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=priya_id).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", {**CONSENT, "excluded_services": ["police"]})
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    assert complete(runtime, episode_id, "appoint_lead_professional",
                    {"lead_professional_email": OFFICER}).status == "error"
    return f"WST-{episode_id:06d}"


def test_an_administrator_retries_an_errored_episode_with_corrected_data(page, axe_check, live_server):
    reference = errored_episode(live_server)
    sign_in(page, axe_check, live_server, "ada.admin")
    page.get_by_role("link", name="Episodes", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Episodes in")
    expect(page.get_by_test_id("count-errored")).to_contain_text("1 errored")
    axe_check(page)

    page.get_by_test_id("count-errored").get_by_role("link").click()
    expect(page.get_by_test_id("error-message")).to_contain_text("the family's consent excludes")
    axe_check(page)
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(page.locator("[data-bpmn-diagram]")).to_have_attribute("data-diagram-state", re.compile("ready"),
                                                                     timeout=20_000)
    axe_check(page)

    # No reason: refused, nothing changed, what was typed kept.
    data = page.get_by_label("appoint_lead_professional", exact=True)
    data.fill(data.input_value().replace(OFFICER, "tom.okafor@westminster.example"))
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    expect(page.get_by_label("appoint_lead_professional", exact=True)).to_have_value(
        re.compile("tom.okafor@westminster.example"))
    axe_check(page)
    page.locator("#reason-retry").fill("The team chose the health visitor: the family excluded the police")
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_text("The failed step was run again.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_contain_text("Open")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_test_id("count-errored")).to_contain_text("0 errored")
    page.goto("/admin/episodes/bulk?show=overdue&action=reassign")
    axe_check(page)
