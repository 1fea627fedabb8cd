"""Moving an episode between authorities in a real browser: the new authority asks, the old one
releases, the signed file is imported; every page checked with axe."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from ..conftest import VETTED
from .test_access_pages import sign_in

pytestmark = pytest.mark.browser


def _second_authority(live_server) -> dict:
    """Camden, with an administrator and a practitioner who sign in like the demo's people, and an
    open, consented episode of the demo that may be released."""
    from app.clock import now
    from app.models import Authority, Episode, Organisation, User
    from app.services.transfers.requests import release_problem

    with live_server.runtime.db.session() as session:
        ada = session.scalar(select(User).where(User.username == "ada.admin"))
        camden = Authority(code="CMD", name="Camden (test)", admin_email="admin@camden.example")
        session.add(camden)
        session.flush()
        hub = Organisation(name="Camden Family Hub", kind="council_service", authority_id=camden.id)
        session.add(hub)
        session.flush()
        # Two administrators: an authenticator code is accepted once per account, and the one who
        # asks signs in again too soon to import with a fresh code.
        for username, name, role in (("cam.admin", "Cam Admin", "administrator"),
                                     ("cat.admin", "Cat Admin", "administrator"),
                                     ("cara.lead", "Cara Lead", "practitioner")):
            session.add(User(username=username, email=f"{username}@camden.example", full_name=name,
                             job_title="Family worker", role=role, organisation_id=hub.id, phone="020 0000 0000",
                             created_at=now(), password_hash=ada.password_hash, totp_secret=ada.totp_secret,
                             totp_enrolled_at=ada.totp_enrolled_at, **VETTED))
        session.flush()
        for episode in session.scalars(select(Episode).where(Episode.consent_state == "given").order_by(Episode.id)):
            if episode.child and episode.child.date_of_birth and release_problem(session, episode) is None:
                child = episode.child
                return {"reference": episode.reference, "given": child.given_names, "family": child.family_name,
                        "born": child.date_of_birth}
    pytest.skip("the demo holds no episode that may be released")


def test_asked_for_released_and_imported(page, axe_check, live_server, tmp_path):
    wanted = _second_authority(live_server)
    sign_in(page, axe_check, live_server, "cam.admin")
    page.goto("/transfers/requests/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Moving episodes between authorities")
    axe_check(page)
    page.get_by_role("link", name="Ask for an episode").click()
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the episode's reference")
    axe_check(page)
    page.get_by_label("Episode reference").fill(wanted["reference"])
    page.get_by_label("Child's first names").fill(wanted["given"])
    page.get_by_label("Child's last name").fill(wanted["family"])
    page.get_by_label("Day").fill(str(wanted["born"].day))
    page.get_by_label("Month").fill(str(wanted["born"].month))
    page.get_by_label("Year").fill(str(wanted["born"].year))
    page.get_by_label("Why should the episode move to your authority?").fill("The family moved to Camden")
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_text("Waiting for the other authority")).to_be_visible()
    expect(page.get_by_text("Westminster")).to_have_count(0)
    axe_check(page)
    page.get_by_test_id("sign-out").click()

    sign_in(page, axe_check, live_server, "ada.admin")
    page.goto("/transfers/requests/")
    expect(page.get_by_test_id("incoming")).to_contain_text("Waiting for your decision")
    axe_check(page)
    page.get_by_role("link", name=wanted["reference"]).click()
    axe_check(page)
    page.get_by_role("button", name="Save the decision").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose whether to release")
    axe_check(page)
    page.get_by_label("Release it").check()
    page.get_by_label("Your reason").fill("Confirmed with the family")
    page.get_by_role("button", name="Save the decision").click()
    expect(page.get_by_text("The episode is released")).to_be_visible()
    axe_check(page)
    with page.expect_download() as download:
        page.get_by_role("link", name=f"Download the transfer file for episode {wanted['reference']}").click()
    transfer_file = tmp_path / "transfer.json"
    download.value.save_as(transfer_file)
    page.get_by_test_id("sign-out").click()

    sign_in(page, axe_check, live_server, "cat.admin")
    page.goto("/transfers/import")
    axe_check(page)
    page.get_by_label("Transfer file").set_input_files(str(transfer_file))
    page.get_by_label("Email address of the new lead professional").fill("cara.lead@camden.example")
    page.get_by_role("button", name="Import the episode").click()
    expect(page.get_by_text("has moved to your authority")).to_be_visible()
    axe_check(page)
