"""A request to a service in a real browser: the practitioner attaches evidence and sends it, the team accepts."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_a_practitioner_sends_a_request_with_evidence_and_the_team_accepts_it(page, axe_check, live_server, tmp_path):
    sign_in(page, axe_check, live_server, "priya.shah")
    page.get_by_role("link", name="Leo Carter").first.click()
    page.get_by_test_id("service-requests-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests to services")
    axe_check(page)
    page.get_by_role("button", name="Write the request").click()
    expect(page.get_by_role("alert")).to_contain_text("Select the service to ask for help")
    page.get_by_label("Educational Psychology").check()
    page.get_by_role("button", name="Write the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Write the request")
    expect(page.get_by_test_id("called-panel")).to_contain_text("The school's SEN support plan")
    axe_check(page)

    # Sending without the evidence the service asks for is stopped, and what was typed stays.
    page.get_by_label("What does the child need from this service?").fill("An assessment of Leo's reading")
    page.get_by_label("Support already in place").fill("Daily reading support since September")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("asks for evidence this request does not give")
    expect(page.get_by_label("What does the child need from this service?")).to_have_value(
        "An assessment of Leo's reading")
    axe_check(page)

    # The evidence is attached inside the request form, and what was typed stays.
    plan = tmp_path / "sen-support-plan.pdf"
    plan.write_bytes(PDF)
    page.locator("input[type=file][name=evidence_file]").set_input_files(str(plan))
    page.get_by_role("button", name="Attach the file").click()
    expect(page.get_by_test_id("request-evidence")).to_contain_text("sen-support-plan.pdf")
    expect(page.get_by_test_id("draft-saved")).to_contain_text("Draft saved on")
    expect(page.get_by_label("What does the child need from this service?")).to_have_value(
        "An assessment of Leo's reading")
    axe_check(page)

    evidence = page.get_by_label("The evidence, or where it is attached")
    evidence.nth(0).fill("Section 4 of the assessment: reading age two years behind")
    evidence.nth(1).fill("Attached: sen-support-plan.pdf")
    evidence.nth(2).fill("Two terms of daily reading support; small gains in phonics")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("“Write the request” is complete.")).to_be_visible()
    page.get_by_test_id("sign-out").click()

    sign_in(page, axe_check, live_server, "eve.psych")
    page.get_by_role("link", name="Requests", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Requests to your service")
    axe_check(page)
    page.get_by_role("link", name="Leo Carter").click()
    expect(page.get_by_test_id("request-summary")).to_contain_text("With the service")
    expect(page.get_by_test_id("request-files")).to_contain_text("sen-support-plan.pdf")
    axe_check(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="sen-support-plan.pdf").click()
    assert download.value.suggested_filename == "sen-support-plan.pdf"
    page.get_by_label("Accept the request").check()
    page.get_by_label("Next steps").fill("We will visit school on Tuesday")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_text("Your decision is recorded")).to_be_visible()
    page.get_by_role("link", name="Show all requests, answered ones too").click()
    expect(page.get_by_test_id("team-inbox")).to_contain_text("Accepted")
    axe_check(page)
