"""The duty to share in a real browser: the originator records a decision to share Maya's assessment
with a practitioner who is not on her CAF, the administrator approves it, the recipient reads exactly
that record; every page checked with axe."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser


def fill_decision_to_share(page) -> None:
    """The form of a decision to share Maya's assessment with Sam Reid for ten days, the family told."""
    from app.clock import now

    page.get_by_label("To share information without consent").check()
    email = page.get_by_label("Practitioner's work email address")
    expect(email).to_be_hidden()  # revealed by its answer
    page.get_by_label("A practitioner who uses eCAF").check()
    email.fill("sam.reid@westminster.example")
    page.get_by_label("Assessment").check()
    page.get_by_label("Purpose of sharing").fill("The family support worker must know of the injuries")
    page.get_by_label("Why sharing is not more detrimental to the child than not sharing").fill(
        "The risk of harm outweighs the family's wish not to share")
    ends = (now() + timedelta(days=10)).date()
    page.locator("#expires-at-day").fill(str(ends.day))
    page.locator("#expires-at-month").fill(str(ends.month))
    page.locator("#expires-at-year").fill(str(ends.year))
    page.get_by_label("Yes", exact=True).check()
    expect(page.get_by_label("Why telling the family would be detrimental")).to_be_hidden()


def test_a_decision_to_share_is_recorded_approved_and_read(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "priya.shah")
    page.get_by_role("link", name="Maya Nowak").first.click()
    page.get_by_test_id("share-decisions-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Decisions to share information without consent")
    axe_check(page)
    page.get_by_role("link", name="Record a decision to share information").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Record a decision to share information")
    axe_check(page)

    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_role("alert")).to_contain_text("Select whether you decided to share or not to share")
    axe_check(page)
    fill_decision_to_share(page)
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_test_id("share-decisions")).to_contain_text("Waiting for approval")
    axe_check(page)

    page.context.clear_cookies()
    sign_in(page, axe_check, live_server, "ada.admin")
    page.goto("/share-decisions")
    expect(page.get_by_role("heading", level=1)).to_have_text("Decisions to share waiting for approval")
    axe_check(page)
    page.get_by_test_id("share-approvals").get_by_role("link").first.click()
    page.get_by_role("button", name="Record your decision").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    axe_check(page)
    page.get_by_label("Approve: share these records until the expiry date").check()
    page.get_by_label("Your reasons").fill("Necessary and proportionate to keep Maya safe")
    page.get_by_role("button", name="Record your decision").click()
    expect(page.get_by_text("The decision to share was approved")).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, axe_check, live_server, "sam.reid")
    page.get_by_role("link", name="Shared with you").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Information shared with you")
    axe_check(page)
    page.get_by_test_id("shared-with-me").get_by_role("link").first.click()
    expect(page.get_by_test_id("shared-records")).to_have_text("Assessment")
    axe_check(page)
    page.get_by_test_id("shared-records").get_by_role("link", name="Assessment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Assessment")
    axe_check(page)
