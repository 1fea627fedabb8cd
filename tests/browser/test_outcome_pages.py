"""Headline outcomes in a real browser: the plan's outcomes on the review page, an error summary for
progress left out, each page checked with axe."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in
from .test_form_choices import _episode, _task_id

pytestmark = pytest.mark.browser


def test_the_review_asks_for_progress_against_the_plans_outcomes(page, axe_check, live_server):
    from tests.conftest import complete
    from tests.journeys import CHECKLIST, CONSENT, assessment, today

    runtime = live_server.runtime
    episode_id = _episode(live_server, "Outcomes", "priya.shah")
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat()})
    complete(runtime, episode_id, "appoint_lead_professional",
             {"lead_professional_email": "tom.okafor@westminster.example"})
    sign_in(page, axe_check, live_server, "tom.okafor")
    page.goto(f"{live_server.url}/tasks/{_task_id(live_server, episode_id, 'action_plan')}")
    page.get_by_label("Getting a good education").check()
    page.get_by_label("Secure housing").check()
    review_on = today() + timedelta(days=28)
    group = page.get_by_role("group", name="Date of next review")
    group.get_by_label("Day").fill(str(review_on.day))
    group.get_by_label("Month").fill(str(review_on.month))
    group.get_by_label("Year").fill(str(review_on.year))
    axe_check(page)
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("“Agree the action plan” is complete.")).to_be_visible()

    page.goto(f"{live_server.url}/tasks/{_task_id(live_server, episode_id, 'review')}")
    education = page.get_by_role("group", name="Getting a good education")
    expect(education).to_be_visible()
    expect(page.get_by_role("group", name="Secure housing")).to_be_visible()
    expect(page.get_by_role("group", name="Financial stability")).to_have_count(0)
    education.get_by_label("Met", exact=True).check()
    group = page.get_by_role("group", name="Date of review")
    group.get_by_label("Day").fill(str(today().day))
    group.get_by_label("Month").fill(str(today().month))
    group.get_by_label("Year").fill(str(today().year))
    page.get_by_label("Close the CAF").check()
    axe_check(page)
    page.get_by_role("button", name="Submit").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter the evidence that this outcome is met")
    expect(summary).to_contain_text("Select the progress towards “Secure housing”")
    axe_check(page)
