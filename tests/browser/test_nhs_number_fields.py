"""The NHS number on Start a CAF in a real browser: a wrong number and a number given with a reason
each explained beside the field and in the error summary, what was typed kept, every page passing
axe; then the number shown 3-3-4 on the CAF."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser


def test_the_number_is_checked_kept_and_shown(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "priya.shah")
    page.goto(f"{live_server.url}/children/find")
    page.get_by_label("NHS number (optional)").fill("943 476 5918")
    page.get_by_label("Family name").fill("Numbered")
    page.get_by_label("Postcode").fill("W9 1AA")
    page.get_by_role("button", name="Search").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_contain_text("Enter a real NHS number: check it has been typed correctly")
    expect(page.get_by_label("NHS number (optional)")).to_have_value("943 476 5918")
    axe_check(page)

    page.get_by_label("NHS number (optional)").fill("943 476 5919")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No CAF was found for a child with these details.")).to_be_visible()
    page.get_by_role("button", name="Record the child and start a CAF").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Record the child and start a CAF")
    expect(page.get_by_label("NHS number", exact=True)).to_have_value("943 476 5919")
    page.get_by_label("Given names").fill("Nia")
    page.locator("#child-0-date-of-birth-day").fill("4")
    page.locator("#child-0-date-of-birth-month").fill("9")
    page.locator("#child-0-date-of-birth-year").fill("2016")
    page.get_by_label("Address").fill("4 Numbered Row")
    page.get_by_label("No: not known, and finding it would cause unreasonable delay").check()
    page.get_by_role("button", name="Start the CAF").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Enter the NHS number of the child, or choose why it is not included, not both")
    expect(page.get_by_label("NHS number", exact=True)).to_have_value("943 476 5919")
    axe_check(page)

    page.get_by_label("Yes, it is entered above").check()
    page.get_by_role("button", name="Start the CAF").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+$"))
    expect(page.get_by_test_id("nhs-number")).to_have_text("943 476 5919")
    axe_check(page)
