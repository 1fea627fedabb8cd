"""The administrators' pages for API clients in a real browser: register (errors, then the secret
shown once), the list, and revoking on an "Are you sure?" page; every page checked with axe."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .test_access_pages import sign_in

pytestmark = pytest.mark.browser


def test_registered_listed_and_revoked(page, axe_check, live_server):
    from app.services.api_clients import today

    sign_in(page, axe_check, live_server, "ada.admin")
    page.goto("/admin/api-clients/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Client systems that call eCAF")
    axe_check(page)
    page.get_by_role("link", name="Register a client system").click()
    page.get_by_role("button", name="Register and show the secret").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the name of the client system")
    axe_check(page)
    page.get_by_label("Name of the client system").fill("Mosaic case management")
    page.get_by_label("Search the national index (index:read)").check()
    expires = today().replace(year=today().year + 1) if (today().month, today().day) != (2, 29) else today()
    page.get_by_label("Day").fill(str(expires.day - 1 if expires.day > 1 else 1))
    page.get_by_label("Month").fill(str(expires.month))
    page.get_by_label("Year").fill(str(expires.year))
    page.get_by_role("button", name="Register and show the secret").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mosaic case management is registered")
    assert "." in page.get_by_test_id("credentials").inner_text()
    axe_check(page)
    page.get_by_role("link", name="Back to client systems").click()
    expect(page.get_by_test_id("api-clients")).to_contain_text("Mosaic case management")
    axe_check(page)
    page.get_by_role("link", name="Revoke Mosaic case management").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Are you sure you want to revoke Mosaic case management?")
    axe_check(page)
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter why the client system may no longer call eCAF")
    axe_check(page)
    page.get_by_label("Why may it no longer call eCAF?").fill("Contract ended")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id("api-clients")).to_contain_text("Revoked")
    axe_check(page)
