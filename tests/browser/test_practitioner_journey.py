"""Practitioners' journeys in a real browser: every page checked with axe and watched for CSP and script errors."""
from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from app.demo import DEMO_PASSWORD, NEW_USER

pytestmark = pytest.mark.browser

CHILD = {"given_names": "Robin", "family_name": "Ashdown", "day": "14", "month": "2", "year": "2017",
         "postcode": "W9 3XY", "address": "12 Elgin Avenue\nLondon", "nhs_number": "943-476-5919"}


def sign_in_with_password(page, axe_check, username: str) -> None:
    page.goto("/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to eCAF")
    axe_check(page)
    page.get_by_label("Username or work email").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()


def wait_for_diagram(page) -> None:
    diagram = page.locator("[data-bpmn-diagram]")
    expect(diagram).to_have_attribute("data-diagram-state", re.compile("ready|failed"), timeout=20_000)
    assert diagram.get_attribute("data-diagram-state") == "ready", diagram.inner_text()
    expect(diagram.locator("svg").first).to_be_visible()


def open_task(page, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def submit_task(page) -> None:
    page.get_by_role("button", name="Submit", exact=True).click()


def fill_date(page, field_id: str, day: str, month: str, year: str) -> None:
    page.locator(f"#{field_id}-day").fill(day)
    page.locator(f"#{field_id}-month").fill(month)
    page.locator(f"#{field_id}-year").fill(year)


def test_new_practitioner_enrols_starts_a_caf_completes_the_assessment_and_prints_it(page, axe_check, live_server):
    # Sign in for the first time: password, then set up the authenticator.
    sign_in_with_password(page, axe_check, NEW_USER)
    expect(page).to_have_url(re.compile(r"/sign-in/set-up-authenticator$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up your authenticator app")
    expect(page.locator(".ecaf-qr svg")).to_be_visible()
    axe_check(page)
    key = "".join(page.get_by_test_id("totp-key").inner_text().split())
    page.get_by_label("Enter the 6-digit code the app now shows for eCAF").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Continue").click()

    # The recovery codes are shown once, then on to the task list.
    codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(codes.first).to_be_visible()
    assert codes.count() >= 8
    axe_check(page)
    page.get_by_role("link", name=re.compile("continue$")).click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your tasks")
    expect(page.get_by_text("Signed in as Nina Patel")).to_be_visible()
    axe_check(page)

    # Find the child first: nobody has a CAF for them.
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Start a CAF").click()
    expect(page).to_have_url(re.compile(r"/children/find$"))
    axe_check(page)
    page.get_by_label("NHS number (optional)").fill(CHILD["nhs_number"])
    page.get_by_label("Given names (optional)").fill(CHILD["given_names"])
    page.get_by_label("Family name").fill(CHILD["family_name"])
    fill_date(page, "date-of-birth", CHILD["day"], CHILD["month"], CHILD["year"])
    page.get_by_label("Postcode").fill(CHILD["postcode"])
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Search results")).to_be_visible()
    expect(page.get_by_text("No CAF was found for a child with these details.")).to_be_visible()
    axe_check(page)
    page.get_by_role("button", name="Record the child and start a CAF").click()

    # Record the child: what was searched for is filled in already.
    expect(page.get_by_role("heading", level=1)).to_have_text("Record the child and start a CAF")
    expect(page.get_by_label("Given names")).to_have_value(CHILD["given_names"])
    expect(page.get_by_label("Family name")).to_have_value(CHILD["family_name"])
    expect(page.locator("#child-0-date-of-birth-year")).to_have_value(CHILD["year"])
    expect(page.get_by_label("NHS number", exact=True)).to_have_value(CHILD["nhs_number"])
    expect(page.get_by_label("Postcode")).to_have_value(CHILD["postcode"])
    expect(page.get_by_label("Local authority where the child lives")).to_have_value(re.compile(r"^\d+$"))
    axe_check(page)
    page.get_by_label("Address").fill(CHILD["address"])
    page.get_by_role("button", name="Start the CAF").click()

    # The episode page, then the checklist from "Waiting to be done".
    expect(page).to_have_url(re.compile(r"/episodes/\d+$"))
    episode_url = page.url
    expect(page.get_by_text("The CAF has started.")).to_be_visible()
    expect(page.get_by_test_id("nhs-number")).to_have_text("943 476 5919")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{CHILD['given_names']} {CHILD['family_name']}")
    expect(page.get_by_test_id("stage")).to_have_text("Preparation")
    wait_for_diagram(page)
    axe_check(page)
    open_task(page, "Complete the pre-assessment checklist")
    axe_check(page)
    healthy = page.get_by_role("group", name="Does the child appear to be healthy?")
    healthy.get_by_label("Not sure").check()
    healthy.get_by_label("Notes").fill("Often tired in class.")
    page.get_by_label("Start a full common assessment (CAF)").check()
    submit_task(page)

    # Straight on to consent, the practitioner's next task.
    expect(page.get_by_text("“Complete the pre-assessment checklist” is complete.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Obtain consent")
    axe_check(page)
    page.get_by_role("group", name="Consent decision").get_by_label("Consent given").check()
    page.get_by_label("A child for whom the person is parent or carer").check()
    page.get_by_label("Name of the person giving or refusing consent").fill("Jo Ashdown")
    page.get_by_label("Relationship to the child").fill("Mother")
    page.get_by_role("group", name="Has parental responsibility").get_by_label("Yes").check()
    page.get_by_label("Agrees to the information being recorded and stored").check()
    page.get_by_label("Agrees to the information being shared").check()
    page.get_by_role("group", name="Kinds of service the information must never be shared with") \
        .get_by_label("Police").check()
    page.get_by_label("Written (signed)").check()
    fill_date(page, "given_on", "3", "3", "2025")
    submit_task(page)

    # The assessment: a task list of its sections, each a page of its own.
    expect(page.get_by_role("heading", level=1)).to_have_text("Complete and submit the assessment")
    expect(page.get_by_test_id("sections")).to_contain_text("Not started")
    axe_check(page)

    # The child's details are filled in from the record.
    page.get_by_role("link", name="B. Identifying details of the child", exact=True).click()
    expect(page.locator("#section_b_child-given_names")).to_have_value(CHILD["given_names"])
    expect(page.locator("#section_b_child-family_name")).to_have_value(CHILD["family_name"])
    expect(page.locator("#section_b_child-date_of_birth-year")).to_have_value(CHILD["year"])
    axe_check(page)

    # A mistake on the way: the family name cleared and an impossible date of birth.
    page.locator("#section_b_child-family_name").fill("")
    fill_date(page, "section_b_child-date_of_birth", "31", "2", CHILD["year"])
    page.get_by_role("button", name="Save and continue").click()

    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile("^Error: "))
    family_link = summary.get_by_role("link", name=re.compile("family name", re.I))
    expect(family_link).to_have_attribute("href", "#section_b_child-family_name")
    date_link = summary.locator('a[href="#section_b_child-date_of_birth-day"]')
    expect(date_link).to_have_text("Date of birth or expected date of delivery must be a real date")
    expect(page.locator("#section_b_child-family_name-error")).to_be_visible()
    # What was typed is kept, the impossible date included.
    expect(page.locator("#section_b_child-given_names")).to_have_value(CHILD["given_names"])
    expect(page.locator("#section_b_child-date_of_birth-day")).to_have_value("31")
    expect(page.locator("#section_b_child-date_of_birth-month")).to_have_value("2")
    axe_check(page)
    family_link.click()
    expect(page.locator("#section_b_child-family_name")).to_be_focused()

    page.locator("#section_b_child-family_name").fill(CHILD["family_name"])
    fill_date(page, "section_b_child-date_of_birth", CHILD["day"], CHILD["month"], CHILD["year"])
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator(".govuk-error-summary")).to_have_count(0)

    page.get_by_role("link", name="I. Conclusions, solutions and actions", exact=True).click()
    page.locator("#section_i_conclusions-key_needs").fill("Support with sleep and school attendance.")
    page.get_by_role("button", name="Save and continue").click()

    # Check the answers, then submit.
    page.get_by_role("link", name="Check your answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers")
    expect(page.locator("main")).to_contain_text("Support with sleep and school attendance.")
    axe_check(page)
    submit_task(page)

    # The assessment is submitted: on to the practitioner's next task, the TAC meeting.
    expect(page.get_by_text("“Complete and submit the assessment” is complete.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hold the Team Around the Child meeting")
    axe_check(page)

    # The episode page: the assessment is on record and the diagram is drawn.
    page.get_by_role("link", name="Back to the CAF").click()
    expect(page).to_have_url(episode_url)
    wait_for_diagram(page)
    records = page.get_by_test_id("records")
    expect(records).to_contain_text("(version 1)")
    axe_check(page)

    # Print it, then download it as a PDF.
    page.get_by_role("link", name="Print the CAF").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+/print$"))
    expect(page.get_by_test_id("protective-marking")).to_contain_text("OFFICIAL – SENSITIVE")
    expect(page.get_by_test_id("signature")).to_contain_text("Nina Patel")
    expect(page.locator("body")).to_contain_text("Support with sleep and school attendance.")
    axe_check(page)
    page.go_back()
    with page.expect_download() as download_info:
        page.get_by_test_id("download-pdf").click()
    download = download_info.value
    assert download.suggested_filename.startswith("CAF-") and download.suggested_filename.endswith(".pdf")
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF"), pdf[:20]
    assert len(pdf) > 2000


def test_practitioner_sends_a_search_request_for_two_children(page, axe_check, live_server):
    sign_in_with_password(page, axe_check, "tom.okafor")
    expect(page).to_have_url(re.compile(r"/sign-in/code$"))
    axe_check(page)
    page.get_by_label("Enter the code from your authenticator app").fill(live_server.totp_code("tom.okafor"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your tasks")
    expect(page.get_by_text("Signed in as Tom Okafor")).to_be_visible()
    axe_check(page)

    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Search requests").click()
    expect(page).to_have_url(re.compile(r"/search-requests/$"))
    axe_check(page)
    page.get_by_role("link", name="Ask the eCAF administrator to search").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask the eCAF administrator to search")
    expect(page.get_by_test_id("no-children")).to_be_visible()
    axe_check(page)

    # Sending with no child is refused, and the reason typed is kept.
    reason = "Two siblings moved into the area; details differ from the school's records."
    page.get_by_label("Why do you need a search?").fill(reason)
    page.get_by_role("button", name="Send the request").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_visible()
    link = summary.get_by_role("link", name="Add at least one child to your request")
    expect(link).to_have_attribute("href", "#given-names")
    expect(page.get_by_label("Why do you need a search?")).to_have_value(reason)
    axe_check(page)
    link.click()
    expect(page.get_by_label("Given names")).to_be_focused()

    children = [("Sky", "Marlow", ("5", "6", "2015"), "NW8 7QT"),
                ("Rory", "Marlow", ("19", "11", "2012"), "NW8 7QT"),
                ("Alex", "Marlow", ("", "", ""), "NW8 7QT")]
    for given, family, (day, month, year), postcode in children:
        page.get_by_label("Given names").fill(given)
        page.get_by_label("Family name").fill(family)
        fill_date(page, "date-of-birth", day, month, year)
        page.get_by_label("Postcode (if known)").fill(postcode)
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_test_id("request-children")).to_contain_text(f"{given} {family}")
    listed = page.get_by_test_id("request-children")
    expect(listed.locator(".govuk-summary-list__row")).to_have_count(3)
    expect(page.get_by_label("Given names")).to_have_value("")
    axe_check(page)

    # One was added by mistake: remove it.
    listed.get_by_role("button", name="Remove Alex Marlow").click()
    expect(listed.locator(".govuk-summary-list__row")).to_have_count(2)
    expect(listed).not_to_contain_text("Alex")
    page.get_by_role("button", name="Send the request").click()

    expect(page).to_have_url(re.compile(r"/search-requests/\d+$"))
    expect(page.get_by_text(re.compile(r"Your search request .+ has been sent"))).to_be_visible()
    expect(page.get_by_text("Waiting for the administrator")).to_be_visible()
    expect(page.locator("main")).to_contain_text(reason)
    kids = page.locator("main ul.govuk-list--bullet li")
    expect(kids).to_have_count(2)
    expect(kids.nth(0)).to_contain_text("Sky Marlow, born 5 June 2015, NW8 7QT")
    expect(kids.nth(1)).to_contain_text("Rory Marlow, born 19 November 2012, NW8 7QT")
    axe_check(page)
