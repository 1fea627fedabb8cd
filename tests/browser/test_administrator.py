"""An administrator in a real browser: from the dashboard to the demo's errored episode, its
operations page part by part, a retry with corrected data and the count going down, and the
"Are you sure?" page before closing an episode; every page checked with axe."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser
OFFICER = "jo.hughes@westminster.example"


def test_an_administrator_retries_an_errored_episode_with_corrected_data(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "ada.admin")
    page.get_by_role("link", name="Episodes", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Episodes in")
    for name in ("errored", "overdue", "stuck", "at_risk"):
        expect(page.get_by_test_id(f"count-{name}")).not_to_contain_text(re.compile(r"^0 "))
    expect(page.get_by_test_id("count-errored")).to_contain_text("1 errored")
    axe_check(page)

    page.get_by_test_id("count-errored").get_by_role("link").click()
    expect(page.get_by_test_id("error-message")).to_contain_text("the family's consent excludes")
    axe_check(page)
    page.get_by_role("link", name=re.compile(r"^WST-")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Noah Williams")
    expect(page.locator("[data-bpmn-diagram]")).to_have_attribute("data-diagram-state", re.compile("ready"),
                                                                     timeout=20_000)
    axe_check(page)
    parts = page.get_by_role("navigation", name="Parts of the operations page")
    for part in ("Tasks", "Timers", "Messages", "Data", "History"):
        parts.get_by_role("link", name=part, exact=True).click()
        expect(parts.get_by_role("link", name=part, exact=True)).to_have_attribute("aria-current", "page")
        axe_check(page)
    expect(page.get_by_test_id("trail")).to_contain_text("Episode operations viewed")
    parts.get_by_role("link", name="Data", exact=True).click()
    expect(page.get_by_test_id("task-data").first).to_contain_text(OFFICER)

    page.get_by_role("link", name="Correct it and retry the failed step").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Retry the failed step")
    # No reason: refused, nothing changed, what was typed kept.
    data = page.get_by_label("appoint_lead_professional", exact=True)
    data.fill(data.input_value().replace(OFFICER, "tom.okafor@westminster.example"))
    page.get_by_role("button", name="Retry the step").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    expect(page.get_by_label("appoint_lead_professional", exact=True)).to_have_value(
        re.compile("tom.okafor@westminster.example"))
    axe_check(page)
    page.get_by_label("Reason").fill("The team chose the health visitor: the family excluded the police")
    page.get_by_role("button", name="Retry the step").click()
    expect(page.get_by_text("The failed step was run again.")).to_be_visible()
    expect(page.get_by_test_id("status")).to_contain_text("Open")

    page.get_by_role("navigation", name="Episodes pages").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_test_id("count-errored")).to_contain_text("0 errored")
    page.goto("/admin/episodes/bulk?show=overdue&action=reassign")
    axe_check(page)

    # Closing an episode: an "Are you sure?" page first, and nothing closes without a reason.
    page.goto("/admin/episodes?show=stuck")
    page.get_by_role("link", name=re.compile(r"^WST-")).first.click()
    page.get_by_role("link", name="Close the episode").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure you want to close this episode?")
    expect(page.locator(".govuk-warning-text")).to_contain_text("cannot be undone")
    axe_check(page)
    page.get_by_label("Closure reason").select_option("family_disengaged")
    page.get_by_role("button", name="Close the episode").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason")
    expect(page.get_by_label("Closure reason")).to_have_value("family_disengaged")
    axe_check(page)
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_test_id("status")).to_contain_text("Open")
    page.get_by_role("link", name="Delete the episode").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure you want to delete this episode?")
    axe_check(page)
