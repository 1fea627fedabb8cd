"""Signing in with two factors, enrolment, delays and lockout, sessions, CSRF and security headers."""
from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from app.accounts import sign_in
from app.clock import now
from app.models import AuditEvent, RecoveryCode, User
from app.web.access import access_of
from tests.web import PASSWORD, browser, text_of

OLIVE = "olive"


def _events(runtime, action):
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_every_page_declares_who_may_use_it(web):
    app = web["app"]
    undeclared = [rule.endpoint for rule in app.url_map.iter_rules() if access_of(app, rule.endpoint) is None]
    assert undeclared == []


@pytest.mark.parametrize("path", ["/", "/account", "/children/find", "/search-requests/new", "/episodes/1",
                                  "/tasks/1", "/episodes/1/print.pdf", "/status"])
def test_pages_need_both_factors(web, path):
    client = browser(web["app"])
    response = client.get(path)
    assert response.status_code == 302 and response.location.startswith("/sign-in")
    # A right password alone is not enough either.
    client.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
    assert client.get(path).location.startswith("/sign-in")


def test_the_sign_in_and_support_pages_are_open(web):
    client = browser(web["app"])
    assert client.get("/sign-in").status_code == 200
    support = client.get("/support")
    assert support.status_code == 200 and "Never share your account" in text_of(support)


def test_sign_in_with_password_and_code_renews_the_session_id(web):
    client = browser(web["app"])
    client.get("/sign-in")
    before = client.client.get_cookie("__Host-ecaf-session").value
    client.sign_in(OLIVE, web["secrets"]["originator"])
    after = client.client.get_cookie("__Host-ecaf-session").value
    assert before != after
    home = client.get("/")
    assert home.status_code == 200 and "Olive Origin" in text_of(home)
    assert len(_events(web["runtime"], "signed_in")) == 1


def test_wrong_password_and_unknown_user_get_the_same_answer(web):
    client = browser(web["app"])
    wrong = client.post("/sign-in", {"username": OLIVE, "password": "not the password at all"})
    unknown = client.post("/sign-in", {"username": "nobody-here", "password": "not the password at all"})
    assert wrong.status_code == unknown.status_code == 400
    assert sign_in.WRONG_DETAILS in text_of(wrong) and sign_in.WRONG_DETAILS in text_of(unknown)
    assert 'value="nobody-here"' in unknown.get_data(as_text=True), "what was typed is kept"


def test_a_wrong_or_replayed_code_is_refused(web):
    client = browser(web["app"])
    secret = web["secrets"]["originator"]
    client.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
    wrong = client.post("/sign-in/code", {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
    assert wrong.status_code == 400 and "Enter the 6-digit code" in text_of(wrong)
    code = pyotp.TOTP(secret).now()
    assert client.post("/sign-in/code", {"code": code}).status_code == 302
    other = browser(web["app"])
    other.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
    replay = other.post("/sign-in/code", {"code": code})
    assert replay.status_code == 400, "a code is accepted once only"


def test_first_sign_in_enrols_an_authenticator_and_recovery_codes_work_once(web):
    runtime = web["runtime"]
    with runtime.db.session() as session:
        session.get(User, web["people"]["lead"]).totp_secret = None
        session.get(User, web["people"]["lead"]).totp_enrolled_at = None
    client = browser(web["app"])
    start = client.post("/sign-in", {"username": "leah", "password": PASSWORD})
    assert start.location == "/sign-in/set-up-authenticator"
    assert client.get("/").location.startswith("/sign-in"), "nothing else before enrolment"
    page = client.get("/sign-in/set-up-authenticator")
    html = page.get_data(as_text=True)
    assert "<svg" in html and "QR code" in html
    key = html.split('data-testid="totp-key">')[1].split("<")[0].replace(" ", "")
    bad = client.post("/sign-in/set-up-authenticator", {"code": "12345"})
    assert bad.status_code == 400
    done = client.post("/sign-in/set-up-authenticator", {"code": pyotp.TOTP(key).now()})
    codes = [c.split("<")[0] for c in done.get_data(as_text=True).split('data-testid="recovery-codes">')[1]
             .split("</ul>")[0].split("<li>")[1:]]
    assert done.status_code == 200 and len(codes) == 10
    assert client.get("/").status_code == 200
    with runtime.db.session() as session:
        stored = session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not any(c.replace("-", "") in h for c in codes for h in stored)

    again = browser(web["app"])
    again.post("/sign-in", {"username": "leah", "password": PASSWORD})
    used = again.post("/sign-in/recovery-code", {"recovery_code": codes[0].upper()})
    assert used.status_code == 302 and used.location == "/"
    assert "You have 9 left" in text_of(again.get("/")), "the message survives the new session id"
    third = browser(web["app"])
    third.post("/sign-in", {"username": "leah", "password": PASSWORD})
    assert third.post("/sign-in/recovery-code", {"recovery_code": codes[0]}).status_code == 400


def test_failures_slow_down_and_only_wrong_codes_lock_the_account_until_an_administrator_unlocks_it(web):
    runtime = web["runtime"]
    secret = web["secrets"]["originator"]
    client = browser(web["app"])
    start = now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(3):
            assert client.post("/sign-in", {"username": OLIVE, "password": "wrong password here"}).status_code == 400
        waiting = client.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
        assert "Too many attempts" in text_of(waiting), "even the right password waits"
        clock.shift(timedelta(seconds=3))
        assert client.post("/sign-in", {"username": OLIVE, "password": PASSWORD}).status_code == 302
        # Wrong passwords, each delay waited out, slow down but never lock (anyone could send them).
        fresh = browser(web["app"])
        for _ in range(sign_in.LOCK_AFTER):
            clock.shift(timedelta(seconds=sign_in.MAX_DELAY_SECONDS + 1))
            fresh.post("/sign-in", {"username": OLIVE, "password": "wrong password here"})
        clock.shift(timedelta(seconds=sign_in.MAX_DELAY_SECONDS + 1))
        assert fresh.post("/sign-in", {"username": OLIVE, "password": PASSWORD}).status_code == 302
        assert not _events(runtime, "account_locked")
        # Wrong codes after the right password do lock it.
        wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        for _ in range(sign_in.LOCK_AFTER):
            clock.shift(timedelta(seconds=sign_in.MAX_DELAY_SECONDS + 1))
            fresh.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
            fresh.post("/sign-in/code", {"code": wrong})
        clock.shift(timedelta(seconds=sign_in.MAX_DELAY_SECONDS + 1))
        locked = fresh.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
        assert locked.status_code == 400 and sign_in.WRONG_DETAILS in text_of(locked)
        assert _events(runtime, "account_locked")
        with runtime.db.session() as session:
            sign_in.unlock(session, session.get(User, web["people"]["originator"]), web["people"]["admin"], "called")
        assert fresh.post("/sign-in", {"username": OLIVE, "password": PASSWORD}).status_code == 302


def test_idle_and_absolute_timeouts_end_the_session(web):
    client = browser(web["app"])
    start = now()
    with time_machine.travel(start, tick=False) as clock:
        client.sign_in(OLIVE, web["secrets"]["originator"])
        clock.shift(timedelta(minutes=29))
        assert client.get("/").status_code == 200
        clock.shift(timedelta(minutes=31))
        expired = client.get("/")
        assert expired.status_code == 302 and expired.location.startswith("/sign-in")
        assert "session ended" in text_of(client.get(expired.location))

    other = browser(web["app"])
    with time_machine.travel(start + timedelta(hours=1), tick=False) as clock:
        other.sign_in("leah", web["secrets"]["lead"])
        for _ in range(12 * 3 + 1):  # busy all day, a request every 20 minutes
            clock.shift(timedelta(minutes=20))
            response = other.get("/")
        assert response.status_code == 302, "12 hours after sign-in the session ends however busy"


def test_sign_out_ends_the_session_on_the_server(web):
    client = browser(web["app"])
    client.sign_in(OLIVE, web["secrets"]["originator"])
    cookie = client.client.get_cookie("__Host-ecaf-session").value
    assert client.post("/sign-out", token_from="/").status_code == 302
    replayed = web["app"].test_client()
    replayed.set_cookie("__Host-ecaf-session", cookie)
    assert replayed.get("/").status_code == 302, "the old cookie is worthless"


def test_sign_out_everywhere_ends_every_session(web):
    laptop, phone = browser(web["app"]), browser(web["app"])
    laptop.sign_in(OLIVE, web["secrets"]["originator"])
    with time_machine.travel(now() + timedelta(seconds=31)):
        phone.sign_in(OLIVE, web["secrets"]["originator"])
        assert phone.post("/account/sign-out-everywhere", token_from="/account").status_code == 302
        assert laptop.get("/").status_code == 302


def test_change_password_needs_the_current_one_and_a_code(web):
    runtime, secret = web["runtime"], web["secrets"]["originator"]
    client, other = browser(web["app"]), browser(web["app"])
    client.sign_in(OLIVE, secret)
    with time_machine.travel(now() + timedelta(seconds=31)):
        other.sign_in(OLIVE, secret)
    with time_machine.travel(now() + timedelta(seconds=62)):
        new = "seven blue herons over the marsh"
        wrong = client.post("/account/password", {"current_password": "nope", "new_password": new,
                                                  "confirm_password": new, "code": pyotp.TOTP(secret).now()})
        assert wrong.status_code == 400 and "Enter your current password" in text_of(wrong)
        short = client.post("/account/password", {"current_password": PASSWORD, "new_password": "short",
                                                  "confirm_password": "short", "code": pyotp.TOTP(secret).now()})
        assert "at least 12 characters" in text_of(short)
        common = client.post("/account/password", {"current_password": PASSWORD, "new_password": "password1234",
                                                   "confirm_password": "password1234",
                                                   "code": pyotp.TOTP(secret).now()})
        assert "too common" in text_of(common)
        done = client.post("/account/password", {"current_password": PASSWORD, "new_password": new,
                                                 "confirm_password": new, "code": pyotp.TOTP(secret).now()})
        assert done.status_code == 302
        assert client.get("/account").status_code == 200, "this device stays signed in"
        assert other.get("/").status_code == 302, "every other session ended"
    assert _events(runtime, "password_changed")


def test_a_forged_or_missing_csrf_token_is_refused(web):
    client = web["app"].test_client()
    client.get("/sign-in")
    forged = client.post("/sign-in", data={"username": OLIVE, "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 400 and "could not be sent" in text_of(forged)
    missing = client.post("/sign-in", data={"username": OLIVE, "password": PASSWORD})
    assert missing.status_code == 400


def test_security_headers_on_every_page(web):
    client = browser(web["app"])
    for path in ("/sign-in", "/support", "/does-not-exist"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert "max-age" in headers["Strict-Transport-Security"]
    page = client.get("/sign-in").get_data(as_text=True)
    nonce = client.get("/sign-in").headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert nonce not in page, "a new nonce for every response"
    assert "style=" not in page


def test_the_session_cookie_is_locked_down(web):
    client = browser(web["app"])
    response = client.get("/sign-in")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-ecaf-session=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Path=/" in cookie


def test_the_password_step_runs_out(web):
    client = browser(web["app"])
    with time_machine.travel(now(), tick=False) as clock:
        client.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
        clock.shift(timedelta(minutes=6))
        late = client.get("/sign-in/code")
        assert late.status_code == 302 and late.location == "/sign-in"


def test_an_open_redirect_after_sign_in_is_refused(web):
    client = browser(web["app"])
    client.post("/sign-in?next=//evil.example/x", {"username": OLIVE, "password": PASSWORD},
                token_from="/sign-in")
    done = client.post("/sign-in/code", {"code": pyotp.TOTP(web["secrets"]["originator"]).now()})
    assert done.location == "/"


def test_the_sweep_removes_sessions_that_can_never_be_used_again(web):
    from app.jobs.sweep import purge_sessions
    from app.models import WebSession

    runtime = web["runtime"]
    ended, live = browser(web["app"]), browser(web["app"])
    ended.sign_in(OLIVE, web["secrets"]["originator"])
    ended.post("/sign-out", token_from="/")
    live.sign_in("leah", web["secrets"]["lead"])
    assert purge_sessions(runtime) >= 1
    assert live.get("/").status_code == 200, "a session in use stays"
    with time_machine.travel(now() + timedelta(minutes=31)):
        purge_sessions(runtime)
    with runtime.db.session() as session:
        assert session.scalars(select(WebSession)).all() == []
