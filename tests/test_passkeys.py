"""Passkeys: added from Your account after a fresh sign-in, used instead of a code, refused when wrong,
another user's, replayed or copied, removed, and required by an authority for a role."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pyotp
import time_machine
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from app.accounts import passkeys
from app.clock import now
from app.models import AuditEvent, Passkey, User, WebSession
from tests.passkey_authenticator import SoftwarePasskey, b64url
from tests.web import PASSWORD, browser, text_of

OLIVE, LEAH = "olive", "leah"


def _events(runtime, action):
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _options(response) -> dict:
    html = response.get_data(as_text=True)
    match = re.search(r'<script type="application/json" id="passkey-options"[^>]*>(.*?)</script>', html, re.S)
    assert match, "the page carries no passkey options"
    return json.loads(match.group(1))


def _signed_in(web, username: str, who: str):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def _add_passkey(client, name: str = "Work laptop", passkey: SoftwarePasskey | None = None) -> SoftwarePasskey:
    passkey = passkey or SoftwarePasskey()
    page = client.get("/account/passkeys")
    answer = client.post("/account/passkeys", {"name": name, "credential": passkey.create(_options(page))},
                         token_from="/account/passkeys")
    assert answer.status_code == 302 and answer.location.endswith("/account/passkeys"), text_of(answer)
    return passkey


def _password(web, username: str = OLIVE):
    client = browser(web["app"])
    first = client.post("/sign-in", {"username": username, "password": PASSWORD})
    assert first.status_code == 302 and first.location.endswith("/sign-in/code")
    return client


def _use_passkey(client, passkey: SoftwarePasskey, **kwargs):
    page = client.get("/sign-in/passkey")
    assert page.status_code == 200, page.location
    credential = passkey.get(_options(page), **kwargs)
    return client.post("/sign-in/passkey", {"credential": credential}, token_from="/sign-in/code"), credential


def test_add_a_passkey_then_sign_in_with_password_and_passkey(web):
    runtime = web["runtime"]
    client = _signed_in(web, OLIVE, "originator")
    account = client.get("/account")
    assert "/account/passkeys" in account.get_data(as_text=True)
    page = client.get("/account/passkeys")
    assert page.status_code == 200 and "You have not added a passkey" in text_of(page)
    options = _options(page)
    assert options["rp"]["id"] == "localhost" and options["user"]["name"] == OLIVE
    passkey = _add_passkey(client)
    listed = text_of(client.get("/account/passkeys"))
    assert "Work laptop" in listed and "Not yet" in listed
    [registered] = _events(runtime, "passkey_registered")
    assert registered.actor_id == web["people"]["originator"] and registered.detail["name"] == "Work laptop"

    # The second-factor page offers the passkey; the passkey signs in without a code.
    later = _password(web)
    code_page = later.get("/sign-in/code")
    assert "Use a passkey" in text_of(code_page)
    used, _ = _use_passkey(later, passkey)
    assert used.status_code == 302 and "/sign-in" not in used.location, text_of(used)
    assert "Olive Origin" in text_of(later.get("/"))
    assert [e.detail["passkey_id"] for e in _events(runtime, "passkey_used")] == [registered.detail["passkey_id"]]
    with runtime.db.session() as session:
        stored = session.scalar(select(Passkey))
        assert stored.sign_count == 1 and stored.last_used_at is not None and stored.transports == ["internal"]


def test_the_code_and_recovery_codes_still_work_for_a_user_with_a_passkey(web):
    client = _signed_in(web, OLIVE, "originator")
    _add_passkey(client)
    with time_machine.travel(now() + timedelta(seconds=31)):
        again = _password(web)
        done = again.post("/sign-in/code", {"code": pyotp.TOTP(web["secrets"]["originator"]).now()})
        assert done.status_code == 302 and "/sign-in" not in done.location


def test_without_a_passkey_the_code_page_offers_none_and_the_passkey_page_sends_back(web):
    client = _password(web)
    assert "Use a passkey" not in text_of(client.get("/sign-in/code"))
    assert client.get("/sign-in/passkey").location.endswith("/sign-in/code")


def test_a_wrong_passkey_and_another_users_passkey_get_the_same_answer(web):
    runtime = web["runtime"]
    olive_key = _add_passkey(_signed_in(web, OLIVE, "originator"))
    leah_key = _add_passkey(_signed_in(web, LEAH, "lead"), "Leah's phone")

    client = _password(web)
    # Leah's passkey, answering Olive's challenge: refused like any passkey eCAF does not know.
    theirs, _ = _use_passkey(client, leah_key)
    unknown, _ = _use_passkey(client, SoftwarePasskey())
    forged, _ = _use_passkey(client, olive_key, signing_key=ec.generate_private_key(ec.SECP256R1()))
    for response in (theirs, unknown, forged):
        assert response.status_code == 400
        assert "That passkey could not be used to sign in" in text_of(response)
    assert text_of(theirs) == text_of(unknown)
    assert [e.detail["why"] for e in _events(runtime, "passkey_refused")] == [
        "another_users_passkey", "unknown_passkey", "invalid"]
    # Each counts as a wrong second factor, on Olive's account.
    failures = [e for e in _events(runtime, "sign_in_failed") if e.detail.get("stage") == "passkey"]
    assert len(failures) == 3 and {e.actor_id for e in failures} == {web["people"]["originator"]}
    with runtime.db.session() as session:
        assert session.get(User, web["people"]["originator"]).failed_sign_ins == 3
    assert client.get("/").location.startswith("/sign-in")


def test_a_replayed_passkey_answer_is_refused(web):
    runtime = web["runtime"]
    passkey = _add_passkey(_signed_in(web, OLIVE, "originator"))
    first = _password(web)
    used, credential = _use_passkey(first, passkey)
    assert used.status_code == 302 and "/sign-in" not in used.location

    # The same answer again, in a new sign-in after the right password: its challenge is gone.
    second = _password(web)
    second.get("/sign-in/passkey")
    replayed = second.post("/sign-in/passkey", {"credential": credential}, token_from="/sign-in/code")
    assert replayed.status_code == 400 and "ran out of time or was already used" in text_of(replayed)
    assert _events(runtime, "passkey_refused")[-1].detail["why"] == "challenge_not_issued_or_used"
    assert second.get("/").location.startswith("/sign-in")


def test_a_challenge_is_good_for_five_minutes_once_for_its_session_and_purpose(web):
    runtime, olive = web["runtime"], web["people"]["originator"]
    client_data = {}
    with runtime.db.session() as session:
        for name in ("one", "two"):
            session.add(WebSession(id=name * 8, user_id=olive, data={}, created_at=now(), last_seen_at=now()))
        session.flush()
        for name in ("fresh", "late", "other_session", "other_purpose"):
            challenge = passkeys.issue_challenge(session, "one" * 8, olive, passkeys.SIGN_IN)
            client_data[name] = json.dumps({"type": "webauthn.get", "challenge": b64url(challenge),
                                            "origin": "http://localhost"}).encode()

    def take(data, session_id="one" * 8, purpose=passkeys.SIGN_IN):
        with runtime.db.session() as session:
            try:
                return passkeys.take_challenge(session, session_id, olive, purpose, data)
            except passkeys.PasskeyRefused as refused:
                return refused.why

    assert isinstance(take(client_data["fresh"]), bytes)
    assert take(client_data["fresh"]) == "challenge_not_issued_or_used"  # once only
    assert take(client_data["other_session"], session_id="two" * 8) == "challenge_not_issued_or_used"
    assert take(client_data["other_purpose"], purpose=passkeys.REGISTER) == "challenge_not_issued_or_used"
    with time_machine.travel(now() + timedelta(minutes=5, seconds=1)):
        assert take(client_data["late"]) == "challenge_not_issued_or_used"


def test_a_copied_authenticator_is_refused_and_the_user_told(web):
    runtime = web["runtime"]
    passkey = _add_passkey(_signed_in(web, OLIVE, "originator"))
    for _ in range(5):
        client = _password(web)
        used, _ = _use_passkey(client, passkey)
        assert used.status_code == 302 and "/sign-in" not in used.location
    copy = _password(web)
    refused, _ = _use_passkey(copy, passkey, sign_count=3)  # the copy's count is behind the original's 5
    assert refused.status_code == 400
    assert "looks like a copy of your passkey was used" in text_of(refused)
    assert "Someone may have copied your passkey" in text_of(refused)
    [suspected] = _events(runtime, "passkey_clone_suspected")
    assert suspected.detail["stored_sign_count"] == 5 and suspected.detail["presented_sign_count"] == 3
    assert copy.get("/").location.startswith("/sign-in")
    with runtime.db.session() as session:
        assert session.scalar(select(Passkey)).sign_count == 5


def test_rename_and_remove_a_passkey_only_your_own(web):
    runtime = web["runtime"]
    olive = _signed_in(web, OLIVE, "originator")
    _add_passkey(olive)
    leah = _signed_in(web, LEAH, "lead")
    _add_passkey(leah, "Leah's phone")
    with runtime.db.session() as session:
        olive_id = session.scalar(select(Passkey.id).where(Passkey.user_id == web["people"]["originator"]))

    assert leah.get(f"/account/passkeys/{olive_id}/name").status_code == 404
    assert leah.post(f"/account/passkeys/{olive_id}/remove", {}, token_from="/account/passkeys").status_code == 404
    assert any(e.detail.get("asked_for") == "a passkey that is not the user's own"
               for e in _events(runtime, "access_denied"))

    renamed = olive.post(f"/account/passkeys/{olive_id}/name", {"name": "Home PC"})
    assert renamed.status_code == 302 and "Home PC" in text_of(olive.get("/account/passkeys"))
    confirm = olive.get(f"/account/passkeys/{olive_id}/remove")
    assert confirm.status_code == 200 and "Remove the passkey ‘Home PC’?" in text_of(confirm)
    removed = olive.post(f"/account/passkeys/{olive_id}/remove", {})
    assert removed.status_code == 302
    assert "You have not added a passkey" in text_of(olive.get("/account/passkeys"))
    [event] = _events(runtime, "passkey_removed")
    assert event.detail["name"] == "Home PC" and event.actor_id == web["people"]["originator"]
    assert [e.detail["name"] for e in _events(runtime, "passkey_renamed")] == ["Home PC"]
    # No passkey left: the sign-in offers the code only.
    with time_machine.travel(now() + timedelta(seconds=31)):
        client = _password(web)
        assert "Use a passkey" not in text_of(client.get("/sign-in/code"))


def test_adding_or_removing_a_passkey_needs_a_recent_sign_in(web):
    client = _signed_in(web, OLIVE, "originator")
    passkey = SoftwarePasskey()
    page = client.get("/account/passkeys")
    credential = passkey.create(_options(page))
    with time_machine.travel(now() + timedelta(minutes=20)):
        stale = client.get("/account/passkeys")
        assert stale.status_code == 200 and "Sign in again" in text_of(stale)
        assert 'id="passkey-options"' not in stale.get_data(as_text=True)
        refused = client.post("/account/passkeys", {"credential": credential})
        assert refused.status_code == 302 and "/sign-in" in refused.location and "again=1" in refused.location
    with web["runtime"].db.session() as session:
        assert session.scalar(select(Passkey)) is None


def test_a_registration_answer_for_another_challenge_is_refused(web):
    runtime = web["runtime"]
    client = _signed_in(web, OLIVE, "originator")
    page = client.get("/account/passkeys")
    options = _options(page)
    options["challenge"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    answer = client.post("/account/passkeys", {"credential": SoftwarePasskey().create(options)})
    assert answer.status_code == 400 and "ran out of time or was already used" in text_of(answer)
    wrong_origin = SoftwarePasskey().create(_options(client.get("/account/passkeys")), origin="https://evil.test")
    answer = client.post("/account/passkeys", {"credential": wrong_origin})
    assert answer.status_code == 400 and "could not be added" in text_of(answer)
    assert [e.detail["why"].split(":")[0] for e in _events(runtime, "passkey_registration_failed")] == [
        "challenge_not_issued_or_used", "invalid"]
    with runtime.db.session() as session:
        assert session.scalar(select(Passkey)) is None


def test_an_authority_requires_passkeys_of_a_role(web):
    runtime = web["runtime"]
    admin = _signed_in(web, "adam", "admin")
    settings = admin.get("/admin/settings")
    assert "/admin/settings/passkeys" in settings.get_data(as_text=True)
    assert admin.post("/admin/settings/passkeys", {"roles": "practitioner"}).status_code == 400  # no reason
    saved = admin.post("/admin/settings/passkeys", {"roles": "practitioner", "reason": "NCSC guidance"})
    assert saved.status_code == 302
    [changed] = _events(runtime, "passkey_requirement_changed")
    assert changed.detail["roles"] == ["practitioner"] and changed.detail["reason"] == "NCSC guidance"

    # Olive, a practitioner without a passkey: after her code she must add one before she is signed in.
    client = _password(web)
    led = client.post("/sign-in/code", {"code": pyotp.TOTP(web["secrets"]["originator"]).now()})
    assert led.status_code == 302 and led.location.endswith("/sign-in/set-up-passkey")
    assert client.get("/").location.startswith("/sign-in")
    page = client.get("/sign-in/set-up-passkey")
    assert page.status_code == 200 and "Add a passkey to continue" in text_of(page)
    passkey = SoftwarePasskey()
    done = client.post("/sign-in/set-up-passkey", {"name": "Laptop", "credential": passkey.create(_options(page))})
    assert done.status_code == 302 and "/sign-in" not in done.location, text_of(done)
    assert "Olive Origin" in text_of(client.get("/"))
    assert len(_events(runtime, "passkey_registered")) == 1

    # Next time she signs in with it; an administrator (not required) is not led anywhere.
    later = _password(web)
    used, _ = _use_passkey(later, passkey)
    assert used.status_code == 302 and "/sign-in" not in used.location
    with time_machine.travel(now() + timedelta(seconds=31)):
        again = browser(web["app"])
        again.sign_in("adam", web["secrets"]["admin"])
