"""The 2026 law and practice in one practitioner's day, in a real browser: Priya starts a CAF for
Maya's brother from Maya's CAF with his NHS number, opens their family page, and records a decision to
share Maya's assessment without consent, which the administrator approves and the recipient reads.
Every page passes axe; nothing scrolls sideways on a phone."""
from __future__ import annotations

import re
import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in
from .test_duty_to_share import fill_decision_to_share
from .test_small_screens import DESKTOP, PHONE, SIDEWAYS

pytestmark = pytest.mark.browser


def _checked(page, axe_check) -> None:
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        assert page.evaluate(SIDEWAYS) <= 0, f"{page.url} scrolls sideways at {size['width']} px"
        axe_check(page)


def test_nhs_number_family_and_a_decision_to_share(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "priya.shah")
    page.get_by_role("link", name="Maya Nowak").first.click()
    maya = page.url
    # Her brother's CAF, offered the family's details.
    page.get_by_role("button", name="Start a CAF for another child in this family").click()
    expect(page.get_by_test_id("family-prefill")).to_be_visible()
    page.get_by_label("Given names").fill("Theo")
    page.locator("#child-0-date-of-birth-day").fill("12")
    page.locator("#child-0-date-of-birth-month").fill("6")
    page.locator("#child-0-date-of-birth-year").fill("2019")
    page.get_by_label("NHS number", exact=True).fill("401 023 2138")  # a wrong check digit
    page.get_by_label("Yes, it is entered above").check()
    page.get_by_role("button", name="Start the CAF").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter a real NHS number")
    expect(page.get_by_label("Given names")).to_have_value("Theo")
    _checked(page, axe_check)
    page.get_by_label("NHS number", exact=True).fill("401 023 2137")
    page.get_by_role("button", name="Start the CAF").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+$"))
    expect(page.get_by_test_id("nhs-number")).to_have_text("401 023 2137")
    _checked(page, axe_check)

    # The family: both children, with the CAFs Priya may open.
    page.get_by_test_id("family-link").click()
    expect(page.get_by_test_id("family-child")).to_have_count(2)
    expect(page.get_by_test_id("family-child").filter(has_text="Theo")).to_have_count(1)
    expect(page.get_by_test_id("family-child").filter(has_text="Maya Nowak")).to_have_count(1)
    _checked(page, axe_check)

    # A decision to share Maya's assessment without consent.
    page.goto(maya)
    page.get_by_test_id("share-decisions-link").click()
    page.get_by_role("link", name="Record a decision to share information").click()
    fill_decision_to_share(page)
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_test_id("share-decisions")).to_contain_text("Waiting for approval")
    _checked(page, axe_check)

    page.context.clear_cookies()
    sign_in(page, axe_check, live_server, "ada.admin")
    page.goto("/share-decisions")
    page.get_by_test_id("share-approvals").get_by_role("link").first.click()
    _checked(page, axe_check)
    page.get_by_label("Approve: share these records until the expiry date").check()
    page.get_by_label("Your reasons").fill("Necessary and proportionate to keep Maya safe")
    page.get_by_role("button", name="Record your decision").click()
    expect(page.get_by_text("The decision to share was approved")).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, axe_check, live_server, "sam.reid")
    page.get_by_role("link", name="Shared with you").click()
    page.get_by_test_id("shared-with-me").get_by_role("link").first.click()
    expect(page.get_by_test_id("shared-records")).to_have_text("Assessment")
    page.get_by_test_id("shared-records").get_by_role("link", name="Assessment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Assessment")
    _checked(page, axe_check)
