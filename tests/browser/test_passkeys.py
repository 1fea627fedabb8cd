"""Passkeys in Chromium with its virtual authenticator (the DevTools protocol's WebAuthn domain): add one
from Your account, sign out, sign in with the password and the passkey; each page checked with axe.

WebAuthn needs a secure context and a relying party id that is a host name, not an IP address, so
these pages are reached as http://localhost:<port> (the relying party id is then "localhost")."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

USERNAME = "priya.shah"


def localhost(live_server) -> str:
    return f"http://localhost:{urlsplit(live_server.url).port}"


def virtual_authenticator(page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})
    return cdp, added["authenticatorId"]


def password_step(page, axe_check, base: str) -> None:
    page.goto(f"{base}/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to eCAF")
    axe_check(page)
    page.get_by_label("Username or work email").fill(USERNAME)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("Enter the code from your authenticator app")).to_be_visible()


def test_add_a_passkey_sign_out_and_sign_in_with_it(page, axe_check, live_server):
    from app.models import AuditEvent, Passkey, User

    base = localhost(live_server)
    cdp, authenticator = virtual_authenticator(page)

    password_step(page, axe_check, base)
    axe_check(page)
    page.get_by_label("Enter the code from your authenticator app").fill(live_server.totp_code(USERNAME))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your tasks")

    page.goto(f"{base}/account")
    axe_check(page)
    page.get_by_role("link", name="Passkeys: sign in with your fingerprint").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Passkeys")
    expect(page.get_by_text("This browser cannot create a passkey")).to_be_hidden()
    axe_check(page)
    page.get_by_label("Name for this passkey (optional)").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("Your passkey ‘Test laptop’ has been added")
    expect(page.get_by_role("table")).to_contain_text("Test laptop")
    axe_check(page)
    assert len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]) == 1

    page.get_by_test_id("sign-out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to eCAF")

    password_step(page, axe_check, base)
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with your passkey")
    expect(page.get_by_text("This browser cannot use a passkey on this page")).to_be_hidden()
    axe_check(page)
    page.get_by_role("button", name="Use my passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your tasks")
    axe_check(page)

    with live_server.runtime.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == USERNAME))
        passkey = session.scalar(select(Passkey).where(Passkey.user_id == user_id))
        assert passkey.name == "Test laptop" and passkey.last_used_at is not None
        used = session.scalars(select(AuditEvent).where(AuditEvent.action == "passkey_used",
                                                        AuditEvent.actor_id == user_id)).all()
        assert [e.detail["passkey_id"] for e in used] == [passkey.id]


def test_without_webauthn_the_passkey_page_offers_the_code(page, axe_check, live_server):
    """A browser without WebAuthn (or without JavaScript) is told so and sent to the code."""
    from app.clock import now
    from app.models import Passkey, User

    with live_server.runtime.db.session() as session:  # a passkey of hers, whichever test ran first
        user_id = session.scalar(select(User.id).where(User.username == USERNAME))
        session.add(Passkey(user_id=user_id, credential_id="bm90LWEtcmVhbC1jcmVkZW50aWFs", public_key=b"-",
                            sign_count=0, transports=[], name="Old phone", created_at=now()))
    base = localhost(live_server)
    page.add_init_script("delete window.PublicKeyCredential;")
    password_step(page, axe_check, base)
    page.goto(f"{base}/sign-in/passkey")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with your passkey")
    expect(page.get_by_text("This browser cannot use a passkey on this page")).to_be_visible()
    expect(page.get_by_role("button", name="Use my passkey")).to_be_hidden()
    axe_check(page)
    page.get_by_role("link", name="Use the code from your authenticator app").click()
    expect(page.get_by_label("Enter the code from your authenticator app")).to_be_visible()
