"""Sensitive actions need a recent sign-in: a session signed in longer ago than
`fresh_sign_in_minutes` is asked to sign in again (nothing changes meanwhile) and comes back."""
from __future__ import annotations

from datetime import timedelta

import pyotp
import time_machine
from sqlalchemy import select

from app.clock import now
from app.config import Config
from app.models import AuditEvent, User
from tests.web import PASSWORD, browser, text_of

NEW_PASSWORD = "marmalade harbour lantern quietly"


def _events(runtime, action):
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _sign_in_again(client, asked, username, secret):
    """Follow a request to sign in again through both factors; the answer of the code step."""
    page = client.get(asked.location)
    assert page.status_code == 200 and "sign in again" in text_of(page)
    first = client.post(asked.location, {"username": username, "password": PASSWORD})
    assert first.status_code == 302 and first.location == "/sign-in/code", text_of(first)
    return client.post("/sign-in/code", {"code": pyotp.TOTP(secret).now()})


def test_the_fresh_sign_in_time_is_configured_and_defaults_to_15_minutes(monkeypatch):
    assert Config.fresh_sign_in_minutes == 15
    monkeypatch.setenv("ECAF_FRESH_SIGN_IN_MINUTES", "5")
    assert Config.from_env().fresh_sign_in_minutes == 5


def test_a_password_change_long_after_sign_in_asks_to_sign_in_again(web):
    runtime, secret = web["runtime"], web["secrets"]["originator"]
    client = browser(web["app"])
    with time_machine.travel(now(), tick=False) as clock:
        client.sign_in("olive", secret)
        clock.shift(timedelta(minutes=14))
        assert client.get("/account/password").status_code == 200, "14 minutes on is still fresh"
        clock.shift(timedelta(minutes=2))
        asked = client.get("/account/password")
        assert asked.status_code == 302 and asked.location.startswith("/sign-in?")
        assert "next=/account/password&" in asked.location and "again=1" in asked.location
        refused = client.post("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                                    "confirm_password": NEW_PASSWORD,
                                                    "code": pyotp.TOTP(secret).now()}, token_from="/account")
        assert refused.status_code == 302 and refused.location.startswith("/sign-in?")
        assert _events(runtime, "password_changed") == []
        assert client.get("/account").status_code == 200, "still signed in for everything else"

        clock.shift(timedelta(seconds=30))
        back = _sign_in_again(client, asked, "olive", secret)
        assert back.status_code == 302 and back.location == "/account/password"
        clock.shift(timedelta(seconds=30))
        done = client.post("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                                 "confirm_password": NEW_PASSWORD, "code": pyotp.TOTP(secret).now()})
        assert done.status_code == 302 and len(_events(runtime, "password_changed")) == 1


def test_account_administration_long_after_sign_in_asks_to_sign_in_again(web):
    runtime, people, secret = web["runtime"], web["people"], web["secrets"]["admin"]
    lead_id = people["lead"]
    admin = browser(web["app"])
    with time_machine.travel(now(), tick=False) as clock:
        admin.sign_in("adam", secret)
        clock.shift(timedelta(minutes=16))
        for action in ("reset-authenticator", "disable", "revoke-sessions", "reset-password", "unlock"):
            asked = admin.post(f"/accounts/{lead_id}/{action}", {"reason": "Lost her phone"},
                               token_from=f"/accounts/{lead_id}")
            assert asked.status_code == 302 and asked.location.startswith("/sign-in?"), action
        for page in ("/accounts/new", f"/accounts/{lead_id}/edit"):
            asked = admin.get(page)
            assert asked.status_code == 302 and asked.location.startswith("/sign-in?"), page
        with runtime.db.session() as session:
            lead = session.get(User, lead_id)
            assert lead.totp_enrolled_at is not None and lead.active, "nothing was changed"
        assert _events(runtime, "authenticator_reset") == []
        assert admin.get("/accounts").status_code == 200, "the list needs no fresh sign-in"

        clock.shift(timedelta(seconds=30))
        back = _sign_in_again(admin, asked, "adam", secret)
        assert back.location == f"/accounts/{lead_id}/edit"
        done = admin.post(f"/accounts/{lead_id}/reset-authenticator", {"reason": "Lost her phone"},
                          token_from=f"/accounts/{lead_id}")
        assert done.status_code == 302 and not done.location.startswith("/sign-in")
        assert len(_events(runtime, "authenticator_reset")) == 1


def test_a_post_refused_for_freshness_returns_to_the_page_the_form_was_on(web):
    admin = browser(web["app"])
    lead_id = web["people"]["lead"]
    with time_machine.travel(now(), tick=False) as clock:
        admin.sign_in("adam", web["secrets"]["admin"])
        clock.shift(timedelta(minutes=16))
        asked = admin.post(f"/accounts/{lead_id}/disable", {"reason": "Left"}, token_from=f"/accounts/{lead_id}",
                           headers={"Referer": f"http://localhost/accounts/{lead_id}"})
        assert f"next=/accounts/{lead_id}&" in asked.location
        elsewhere = admin.post(f"/accounts/{lead_id}/disable", {"reason": "Left"}, token_from=f"/accounts/{lead_id}",
                               headers={"Referer": "https://evil.example/accounts"})
        assert "next=" not in elsewhere.location


def test_a_signed_in_user_sent_to_sign_in_goes_on_to_a_safe_target_only(web):
    client = browser(web["app"])
    client.sign_in("olive", web["secrets"]["originator"])
    assert client.get("/sign-in?next=/account").location == "/account"
    assert client.get("/sign-in?next=//evil.example/").location == "/"
    assert client.get("/sign-in?next=/account&again=1").location == "/account", "fresh: no need to sign in again"
