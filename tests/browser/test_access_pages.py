"""Who may see what, in a real browser: people and consent, the national index, the audit trail and
the administrators' pages, each checked with axe and watched for CSP and script errors."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .test_practitioner_journey import fill_date, sign_in_with_password

pytestmark = pytest.mark.browser


def sign_in(page, axe_check, live_server, username: str) -> None:
    sign_in_with_password(page, axe_check, username)
    page.get_by_label("Enter the code from your authenticator app").fill(live_server.totp_code(username))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your tasks")


def episode_of(live_server, family_name: str) -> int:
    from sqlalchemy import select

    from app.models import Child, Episode

    with live_server.runtime.db.session() as session:
        return session.scalar(select(Episode.id).join(Child, Child.id == Episode.child_id)
                              .where(Child.family_name == family_name))


def test_the_originator_adds_a_team_member_and_searches_the_index(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "priya.shah")
    page.get_by_role("link", name="Maya Nowak").first.click()
    page.get_by_test_id("people-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("People and consent")
    axe_check(page)

    # A reason is required; what was typed stays.
    page.get_by_label("Their work email address").fill("tom.okafor@westminster.example")
    page.get_by_role("button", name="Add to the episode").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason for adding this person")
    expect(page.get_by_label("Their work email address")).to_have_value("tom.okafor@westminster.example")
    axe_check(page)
    page.get_by_label("Reason for adding them").fill("Health visitor for the family")
    page.get_by_role("button", name="Add to the episode").click()
    expect(page.get_by_test_id("members")).to_contain_text("Tom Okafor")

    page.get_by_role("link", name="Record that consent was withdrawn").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Record that consent was withdrawn")
    axe_check(page)

    page.get_by_role("link", name="Is there a CAF?").click()
    page.get_by_label("Family name").fill("Nowack")
    fill_date(page, "date-of-birth", "22", "1", "2019")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter why you are searching the index")
    axe_check(page)
    page.get_by_label("Why do you need to search?").fill("Maya joined our nursery this week")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("index-result").first).to_contain_text("Nowak")
    axe_check(page)


def test_the_administrator_reads_the_audit_trail_and_records_vetting(page, axe_check, live_server):
    sign_in(page, axe_check, live_server, "ada.admin")
    page.get_by_role("link", name="Reports", exact=True).click()
    page.get_by_role("navigation", name="Reports pages").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    axe_check(page)
    page.get_by_role("link", name="Episodes", exact=True).click()
    page.get_by_role("link", name="Vetting and training").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vetting and training")
    axe_check(page)
    page.get_by_role("link", name="Record a check for Nina Patel").click()
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("alert")).to_contain_text("Select the type of vetting check")
    axe_check(page)
    page.get_by_role("link", name="Episodes", exact=True).click()
    page.get_by_role("link", name="Import an episode from another authority").click()
    axe_check(page)
    page.goto(f"/episodes/{episode_of(live_server, 'Nowak')}")
    page.get_by_role("link", name="See who has opened this CAF").click()
    axe_check(page)
