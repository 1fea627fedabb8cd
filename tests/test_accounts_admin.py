"""Administrators' account management, one-time password links and the public application form."""
from __future__ import annotations

import re
from datetime import timedelta
from unittest.mock import ANY

import pyotp
import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.models import (AccountApplication, AuditEvent, OutboxMessage, PasswordReset,
                        RecoveryCode, User)

from .conftest import other_authority
from .web import PASSWORD, browser, give_credentials, make_app, text_of

NEW_PASSWORD = "marmalade harbour lantern quietly"
VETTING_FORM = {"kind": "enhanced_dbs", "reference": "DBS-778899", "checked_on-day": "3", "checked_on-month": "2",
                "checked_on-year": "2025", "expires_on-day": "3", "expires_on-month": "2", "expires_on-year": "2028",
                "training_on-day": "10", "training_on-month": "2", "training_on-year": "2025"}


# ---------------------------------------------------------------- helpers

def _signed_in(web, who: str):
    usernames = {"originator": "olive", "lead": "leah", "admin": "adam"}
    client = browser(web["app"])
    client.sign_in(usernames[who], web["secrets"][who])
    return client


def _events(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _user(runtime, user_id: int) -> User:
    with runtime.db.session() as session:
        return session.get(User, user_id)


def _emails(runtime, kind: str) -> list[OutboxMessage]:
    with runtime.db.session() as session:
        return session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)
                               .order_by(OutboxMessage.id)).all()


def _token_in(email: OutboxMessage) -> str:
    match = re.search(r"/password/reset/([A-Za-z0-9_-]+)", email.body)
    assert match, email.body
    return match.group(1)


def _count(runtime, model) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _other_authority(runtime) -> dict:
    """Another local authority with an organisation, an administrator who can sign in and a practitioner."""
    ids = other_authority(runtime, "pam")
    ids["secret"] = give_credentials(runtime, ids["otto"])
    return ids


def _school(runtime, people) -> int:
    return _user(runtime, people["originator"]).organisation_id


def _new_account_form(organisation_id: int, **changes) -> dict:
    return {"full_name": "Nina New", "username": "nnew", "email": "nina.new@testshire.test", "job_title": "Teacher",
            "phone": "0100 000 333", "organisation_id": str(organisation_id), "role": "practitioner",
            "reason": "Joined the school as safeguarding lead", **VETTING_FORM, **changes}


def _enrol(client, secret_holder: dict) -> None:
    """Finish a first sign-in: set up the authenticator from the key on the page."""
    html = client.get("/sign-in/set-up-authenticator").get_data(as_text=True)
    key = html.split('data-testid="totp-key">')[1].split("<")[0].replace(" ", "")
    done = client.post("/sign-in/set-up-authenticator", {"code": pyotp.TOTP(key).now()})
    assert done.status_code == 200 and "recovery-codes" in done.get_data(as_text=True)
    secret_holder["key"] = key


# ---------------------------------------------------------------- the list

def test_the_list_shows_this_authoritys_accounts_with_search_and_states(web):
    runtime, people = web["runtime"], web["people"]
    _other_authority(runtime)
    with runtime.db.session() as session:
        session.get(User, people["originator"]).locked_at = now()
        session.get(User, people["lead"]).vetting_checked_on = None
    admin = _signed_in(web, "admin")
    everyone = text_of(admin.get("/accounts"))
    assert "Otto Other" not in everyone and "Pam Elsewhere" not in everyone, "another authority's accounts"
    assert "0 applications waiting" in everyone

    def names(query: str) -> set[str]:
        html = admin.get(f"/accounts?{query}").get_data(as_text=True)
        table = html.split('data-testid="accounts"')[1].split("</table>")[0] if 'data-testid="accounts"' in html else ""
        return {n for n in ("Olive Origin", "Leah Lead", "Adam Admin") if n in table}

    assert names("") == {"Olive Origin", "Leah Lead", "Adam Admin"}
    assert names("q=LEAH") == {"Leah Lead"}
    assert names("q=olive%40testshire") == {"Olive Origin"}
    assert names("state=locked") == {"Olive Origin"}
    assert names("state=vetting") == {"Leah Lead"}
    assert names("state=active") == {"Adam Admin"}
    assert names("state=disabled") == set()
    with runtime.db.session() as session:
        session.get(User, people["lead"]).totp_enrolled_at = None
    assert names("state=not_enrolled") == {"Leah Lead"}
    assert names("state=nonsense") == {"Olive Origin", "Leah Lead", "Adam Admin"}, "an unknown state filters nothing"


def test_only_administrators_reach_the_account_pages(web):
    practitioner = _signed_in(web, "originator")
    assert practitioner.get("/accounts").status_code == 403
    assert practitioner.get("/accounts/new").status_code == 403
    assert browser(web["app"]).get("/accounts").status_code == 302


# ---------------------------------------------------------------- creating an account

def test_creating_an_account_records_vetting_and_emails_a_link_the_administrator_never_sees(web):
    runtime, people = web["runtime"], web["people"]
    other = _other_authority(runtime)
    school = _school(runtime, people)
    admin = _signed_in(web, "admin")
    before = _count(runtime, User)

    shared = admin.post("/accounts/new", _new_account_form(school, email="office@testshire.test"))
    assert shared.status_code == 400 and "not a shared mailbox" in text_of(shared)
    assert "<title>Error: " in shared.get_data(as_text=True)
    assert 'value="Nina New"' in shared.get_data(as_text=True), "what was typed is kept"
    missing = admin.post("/accounts/new", _new_account_form(school, reason="", **{"training_on-day": ""}))
    assert missing.status_code == 400
    assert "Enter why this account is needed" in text_of(missing), text_of(missing)
    assert "The training date must include a day" in text_of(missing)
    assert 'href="#training-on-day"' in missing.get_data(as_text=True), "the summary links to the field"
    taken = admin.post("/accounts/new", _new_account_form(school, email="OLIVE@testshire.test", username="adam"))
    assert "An account with this email already exists" in text_of(taken)
    assert "This username is already used" in text_of(taken)
    elsewhere = admin.post("/accounts/new", _new_account_form(other["organisation"]))
    assert elsewhere.status_code == 400 and "Select an organisation of your local authority" in text_of(elsewhere)
    assert _count(runtime, User) == before and _emails(runtime, "account_welcome") == [], "nothing changed"

    done = admin.post("/accounts/new", _new_account_form(school, role="administrator"))
    assert done.status_code == 302
    page = admin.get(done.location)
    with runtime.db.session() as session:
        nina = session.scalar(select(User).where(User.username == "nnew"))
        resets = session.scalars(select(PasswordReset).where(PasswordReset.user_id == nina.id)).all()
    assert nina.role == "administrator" and nina.password_hash is None and nina.totp_enrolled_at is None
    assert nina.vetting_problem(now().date()) is None and nina.vetting_recorded_by_id == people["admin"]
    [email] = _emails(runtime, "account_welcome")
    token = _token_in(email)
    assert email.recipient == "nina.new@testshire.test" and "Your username is nnew" in email.body
    assert token not in page.get_data(as_text=True) and token not in done.get_data(as_text=True)
    assert len(resets) == 1 and resets[0].token_hash != token and token not in resets[0].token_hash
    [created] = _events(runtime, "account_created")
    assert created.actor_id == people["admin"] and created.detail["reason"] == "Joined the school as safeguarding lead"
    assert _events(runtime, "vetting_recorded")[-1].detail["user_id"] == nina.id
    with runtime.db.session() as session:
        details = " ".join(str(d) for d in session.scalars(select(AuditEvent.detail)).all())
    assert token not in details, "the token is never written to the audit trail"


# ---------------------------------------------------------------- one account

def test_the_account_page_shows_details_state_and_last_sign_in(web):
    admin = _signed_in(web, "admin")
    _signed_in(web, "originator")
    page = text_of(admin.get(f"/accounts/{web['people']['originator']}"))
    assert "Olive Origin" in page and "olive@testshire.test" in page and "Active" in page
    assert "Last signed in Not known" not in page and "Disable the account" in page
    own = text_of(admin.get(f"/accounts/{web['people']['admin']}"))
    assert "This is your own account" in own and "Disable the account" not in own


def test_editing_details_needs_a_reason_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    admin = _signed_in(web, "admin")
    path = f"/accounts/{people['lead']}/edit"
    form = {"full_name": "Leah Leader", "job_title": "Head of year", "phone": "0100 000 444",
            "organisation_id": str(_school(runtime, people)), "role": "service_team"}
    silent = admin.post(path, form)
    assert silent.status_code == 400 and "Enter the reason for the change" in text_of(silent)
    assert 'value="Leah Leader"' in silent.get_data(as_text=True)
    assert _user(runtime, people["lead"]).full_name == "Leah Lead", "nothing changed"
    done = admin.post(path, {**form, "reason": "Promoted"})
    assert done.status_code == 302
    leah = _user(runtime, people["lead"])
    assert (leah.full_name, leah.job_title, leah.role) == ("Leah Leader", "Head of year", "service_team")
    [edited] = _events(runtime, "account_edited")
    assert edited.detail["reason"] == "Promoted" and edited.detail["role_to"] == "service_team"
    assert set(edited.detail["changed"]) == {"full_name", "job_title", "phone", "role"}
    own = admin.post(f"/accounts/{people['admin']}/edit", {**form, "full_name": "Adam Admin", "reason": "Mine"})
    assert own.status_code == 400 and "You cannot change your own role" in text_of(own)


def test_another_authoritys_account_answers_404_and_the_denial_is_audited(web):
    runtime = web["runtime"]
    other = _other_authority(runtime)
    admin = _signed_in(web, "admin")
    pam = other["pam"]
    assert admin.get(f"/accounts/{pam}").status_code == 404
    assert admin.get(f"/accounts/{pam}/edit").status_code == 404
    assert admin.post(f"/accounts/{pam}/disable", {"reason": "x"}, token_from="/accounts").status_code == 404
    assert admin.get("/accounts/999999").status_code == 404
    denied = _events(runtime, "access_denied")
    assert [e.detail["asked_for"] for e in denied] == [f"account {pam}"] * 3 + ["account 999999"]
    assert all(e.actor_id == web["people"]["admin"] for e in denied)
    assert _user(runtime, pam).active, "nothing changed"


# ---------------------------------------------------------------- actions

ACTIONS = ("disable", "enable", "unlock", "revoke-sessions", "reset-authenticator", "reset-password")


def test_every_action_needs_a_reason_and_none_applies_to_yourself(web):
    runtime, people = web["runtime"], web["people"]
    admin = _signed_in(web, "admin")
    olive, adam = people["originator"], people["admin"]
    for action in ACTIONS:
        answer = admin.post(f"/accounts/{olive}/{action}", {"reason": "  "}, token_from=f"/accounts/{olive}")
        assert answer.status_code == 400, action
        assert "Enter the reason for this action" in text_of(answer), action
        assert f'href="#{action}-reason"'.replace("reset-password-", "send-password-link-") \
            in answer.get_data(as_text=True), action
    for action in ("disable", "revoke-sessions", "reset-authenticator", "reset-password"):
        answer = admin.post(f"/accounts/{adam}/{action}", {"reason": "testing"}, token_from=f"/accounts/{adam}")
        assert answer.status_code == 400 and "You cannot do this to your own account here" in text_of(answer), action
    assert admin.get("/accounts").status_code == 200, "the administrator is still signed in"
    me = _user(runtime, adam)
    assert me.active and me.totp_enrolled_at is not None
    assert _emails(runtime, "password_reset") == []
    for action in ("account_disabled", "account_enabled", "account_unlocked", "sessions_revoked",
                   "authenticator_reset", "password_reset_sent"):
        assert _events(runtime, action) == [], action


def test_disabling_ends_a_live_session_at_once_and_enabling_lets_the_person_back(web):
    runtime, people = web["runtime"], web["people"]
    olive_id = people["originator"]
    olive, admin = _signed_in(web, "originator"), _signed_in(web, "admin")
    assert olive.get("/").status_code == 200
    done = admin.post(f"/accounts/{olive_id}/disable", {"reason": "Left the school"},
                      token_from=f"/accounts/{olive_id}")
    assert done.status_code == 302 and "is disabled and signed out everywhere" in text_of(admin.get(done.location))
    assert olive.get("/").location.startswith("/sign-in"), "the live session ended"
    [event] = _events(runtime, "account_disabled")
    assert (event.actor_id, event.detail["user_id"], event.detail["reason"]) == (people["admin"], olive_id,
                                                                                  "Left the school")
    assert event.detail["sessions_ended"] == 1
    again = admin.post(f"/accounts/{olive_id}/disable", {"reason": "Again"}, token_from=f"/accounts/{olive_id}")
    assert "already disabled. Nothing was changed" in text_of(admin.get(again.location))
    assert len(_events(runtime, "account_disabled")) == 1
    refused = browser(web["app"]).post("/sign-in", {"username": "olive", "password": PASSWORD})
    assert refused.status_code == 400

    enabled = admin.post(f"/accounts/{olive_id}/enable", {"reason": "Came back"}, token_from=f"/accounts/{olive_id}")
    assert enabled.status_code == 302 and _user(runtime, olive_id).active
    assert _events(runtime, "account_enabled")[0].detail["reason"] == "Came back"
    noop = admin.post(f"/accounts/{olive_id}/enable", {"reason": "Again"}, token_from=f"/accounts/{olive_id}")
    assert "is not disabled. Nothing was changed" in text_of(admin.get(noop.location))
    with time_machine.travel(now() + timedelta(seconds=31)):  # past the delay after the refused attempt
        _signed_in(web, "originator")


def test_unlocking_clears_the_failures_and_says_so_when_not_locked(web):
    runtime, people = web["runtime"], web["people"]
    olive_id = people["originator"]
    with runtime.db.session() as session:
        olive = session.get(User, olive_id)
        olive.locked_at, olive.failed_sign_ins, olive.last_failed_at = now(), 10, now()
    admin = _signed_in(web, "admin")
    assert "Locked" in text_of(admin.get(f"/accounts/{olive_id}"))
    done = admin.post(f"/accounts/{olive_id}/unlock", {"reason": "Phoned the helpdesk"},
                      token_from=f"/accounts/{olive_id}")
    assert done.status_code == 302
    olive = _user(runtime, olive_id)
    assert olive.locked_at is None and olive.failed_sign_ins == 0
    [event] = _events(runtime, "account_unlocked")
    assert event.actor_id == people["admin"] and event.detail["reason"] == "Phoned the helpdesk"
    noop = admin.post(f"/accounts/{olive_id}/unlock", {"reason": "Again"}, token_from=f"/accounts/{olive_id}")
    assert "is not locked. Nothing was changed" in text_of(admin.get(noop.location))
    assert len(_events(runtime, "account_unlocked")) == 1
    _signed_in(web, "originator")


def test_revoking_sessions_signs_the_person_out_everywhere(web):
    runtime, people = web["runtime"], web["people"]
    lead_id = people["lead"]
    phone, admin = _signed_in(web, "lead"), _signed_in(web, "admin")
    with time_machine.travel(now() + timedelta(seconds=31)):  # a code is accepted once: wait for the next one
        laptop = _signed_in(web, "lead")
    assert "Signed-in sessions 2" in text_of(admin.get(f"/accounts/{lead_id}"))
    done = admin.post(f"/accounts/{lead_id}/revoke-sessions", {"reason": "Phone stolen"},
                      token_from=f"/accounts/{lead_id}")
    assert done.status_code == 302
    assert phone.get("/").status_code == 302 and laptop.get("/").status_code == 302
    [event] = _events(runtime, "sessions_revoked")
    assert event.detail == {"user_id": lead_id, "reason": "Phone stolen", "sessions_ended": 2, "request_ref": ANY}
    noop = admin.post(f"/accounts/{lead_id}/revoke-sessions", {"reason": "Again"}, token_from="/accounts")
    assert "is not signed in anywhere. Nothing was changed" in text_of(admin.get(noop.location))


def test_resetting_the_authenticator_makes_the_person_enrol_again_at_next_sign_in(web):
    runtime, people = web["runtime"], web["people"]
    lead_id = people["lead"]
    leah, admin = _signed_in(web, "lead"), _signed_in(web, "admin")
    with runtime.db.session() as session:
        from app.accounts import recovery
        recovery.issue(session, session.get(User, lead_id))
    done = admin.post(f"/accounts/{lead_id}/reset-authenticator", {"reason": "Lost her phone"},
                      token_from=f"/accounts/{lead_id}")
    assert done.status_code == 302
    assert leah.get("/").status_code == 302, "her sessions ended"
    lead = _user(runtime, lead_id)
    assert (lead.totp_secret, lead.totp_enrolled_at, lead.totp_last_step) == (None, None, None)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(RecoveryCode)
                              .where(RecoveryCode.user_id == lead_id)) == 0
    assert _events(runtime, "authenticator_reset")[0].detail["reason"] == "Lost her phone"
    noop = admin.post(f"/accounts/{lead_id}/reset-authenticator", {"reason": "Again"}, token_from="/accounts")
    assert "has not set up an authenticator yet. Nothing was changed" in text_of(admin.get(noop.location))
    assert len(_events(runtime, "authenticator_reset")) == 1
    again = browser(web["app"])
    start = again.post("/sign-in", {"username": "leah", "password": PASSWORD})
    assert start.location == "/sign-in/set-up-authenticator"
    _enrol(again, {})
    assert again.get("/").status_code == 200


def test_a_password_link_works_once_and_not_after_it_expires(web):
    runtime, people = web["runtime"], web["people"]
    olive_id = people["originator"]
    olive, admin = _signed_in(web, "originator"), _signed_in(web, "admin")
    with runtime.db.session() as session:
        session.get(User, olive_id).failed_sign_ins = 2
    sent = admin.post(f"/accounts/{olive_id}/reset-password", {"reason": "Forgot it"},
                      token_from=f"/accounts/{olive_id}")
    shown = admin.get(sent.location)
    [email] = _emails(runtime, "password_reset")
    token = _token_in(email)
    assert email.recipient == "olive@testshire.test" and token not in shown.get_data(as_text=True)
    assert "A link to set a new password has been emailed to olive@testshire.test" in text_of(shown)
    assert _events(runtime, "password_reset_sent")[0].detail == {"user_id": olive_id, "reason": "Forgot it",
                                                               "request_ref": ANY}

    stranger = browser(web["app"])
    page = stranger.get(f"/password/reset/{token}")
    assert page.status_code == 200 and "Set your password" in text_of(page)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    weak = stranger.post(f"/password/reset/{token}", {"new_password": "short", "confirm_password": "short"})
    assert weak.status_code == 400 and "at least 12 characters" in text_of(weak)
    assert "<title>Error: " in weak.get_data(as_text=True)
    mismatch = stranger.post(f"/password/reset/{token}", {"new_password": NEW_PASSWORD, "confirm_password": "other"})
    assert mismatch.status_code == 400 and "Enter the same password twice" in text_of(mismatch)
    done = stranger.post(f"/password/reset/{token}", {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert done.status_code == 302 and done.location.startswith("/sign-in")
    assert "Your password is set" in text_of(stranger.get(done.location))
    assert olive.get("/").status_code == 302, "every session of hers ended"
    assert _user(runtime, olive_id).failed_sign_ins == 0
    [completed] = _events(runtime, "password_reset_completed")
    assert completed.actor_id == olive_id and token not in str(completed.detail)

    used = stranger.get(f"/password/reset/{token}")
    assert "This link cannot be used" in text_of(used) and used.headers["Referrer-Policy"] == "no-referrer"
    replay = stranger.post(f"/password/reset/{token}", {"new_password": "another long passphrase here",
                                                        "confirm_password": "another long passphrase here"},
                           token_from="/sign-in")
    assert replay.status_code == 400 and "This link cannot be used" in text_of(replay)
    unknown = text_of(stranger.get("/password/reset/not-a-real-token"))
    assert unknown == text_of(used), "unknown and used links look the same"
    with time_machine.travel(now() + timedelta(seconds=31)):  # her earlier code is spent: wait for the next
        browser(web["app"]).sign_in("olive", web["secrets"]["originator"], password=NEW_PASSWORD)

    def send_link() -> str:
        admin.post(f"/accounts/{olive_id}/reset-password", {"reason": "Again"}, token_from=f"/accounts/{olive_id}")
        return _token_in(_emails(runtime, "password_reset")[-1])

    first, second = send_link(), send_link()
    assert "This link cannot be used" in text_of(stranger.get(f"/password/reset/{first}")), "a newer link replaced it"
    assert stranger.get(f"/password/reset/{second}").status_code == 200
    with time_machine.travel(now() + timedelta(hours=24, minutes=1)):
        late = stranger.get(f"/password/reset/{second}")
        assert "This link cannot be used" in text_of(late)
        assert text_of(late) == unknown, "expired links look like any other unusable link"


# ---------------------------------------------------------------- applying for an account

def _application_form(organisation_id: int, **changes) -> dict:
    return {"full_name": "Andy Applicant", "email": "andy.applicant@testshire.test", "job_title": "School nurse",
            "phone": "0100 000 555", "organisation_id": str(organisation_id), "manager_name": "Mary Manager",
            "manager_email": "mary.manager@testshire.test", "reason": "I support children at the school", **changes}


def test_apply_approve_set_password_and_sign_in(web):
    runtime, people = web["runtime"], web["people"]
    school = _school(runtime, people)
    public = browser(web["app"])
    assert 'href="/apply"' in public.get("/sign-in").get_data(as_text=True)
    form_page = public.get("/apply")
    assert form_page.status_code == 200 and "Test Primary" in text_of(form_page)
    assert '<optgroup label="Testshire">' in form_page.get_data(as_text=True)
    empty = public.post("/apply", {})
    assert empty.status_code == 400
    assert "Enter your full name" in text_of(empty) and "Enter why you need" in text_of(empty)
    shared = public.post("/apply", _application_form(school, email="office@testshire.test"))
    assert shared.status_code == 400 and "not a shared mailbox" in text_of(shared)
    assert _count(runtime, AccountApplication) == 0
    sent = public.post("/apply", _application_form(school))
    assert sent.status_code == 200 and "Application sent" in text_of(sent)
    with runtime.db.session() as session:
        application = session.scalar(select(AccountApplication))
    assert application.status == "pending" and application.email == "andy.applicant@testshire.test"
    [applied] = _events(runtime, "account_applied")
    assert applied.actor_id is None and applied.detail["application_id"] == application.id
    assert _emails(runtime, "account_application_received")[0].recipient == "admin@testshire.test"

    admin = _signed_in(web, "admin")
    assert "1 application waiting" in text_of(admin.get("/accounts"))
    assert "Andy Applicant" in text_of(admin.get("/accounts/applications"))
    path = f"/accounts/applications/{application.id}"
    page = admin.get(path)
    assert "I support children at the school" in text_of(page)
    assert 'value="andy.applicant"' in page.get_data(as_text=True), "a username is suggested"
    undecided = admin.post(path, {})
    assert undecided.status_code == 400 and "Choose whether to approve or reject" in text_of(undecided)
    incomplete = admin.post(path, {"decision": "approve", "username": "andy", "role": "practitioner"})
    assert incomplete.status_code == 400
    assert "Select the type of vetting check" in text_of(incomplete)
    assert "Enter the reason for approving" in text_of(incomplete)
    approved = admin.post(path, {"decision": "approve", "username": "andy", "role": "practitioner",
                                 "approve_reason": "Confirmed with Mary by phone", **VETTING_FORM})
    assert approved.status_code == 302
    with runtime.db.session() as session:
        application = session.get(AccountApplication, application.id)
        andy = session.scalar(select(User).where(User.username == "andy"))
    assert application.status == "approved" and application.user_id == andy.id
    assert andy.organisation_id == school and andy.job_title == "School nurse"
    assert _events(runtime, "account_application_approved")[0].detail["reason"] == "Confirmed with Mary by phone"
    twice = admin.post(path, {"decision": "reject", "reject_reason": "Changed my mind"})
    assert twice.status_code == 400 and "already been decided" in text_of(twice)
    assert _count(runtime, User) == 4

    token = _token_in(_emails(runtime, "account_welcome")[0])
    andys = browser(web["app"])
    set_it = andys.post(f"/password/reset/{token}", {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert set_it.status_code == 302
    start = andys.post("/sign-in", {"username": "andy", "password": NEW_PASSWORD})
    assert start.location == "/sign-in/set-up-authenticator", "a new account enrols an authenticator first"
    _enrol(andys, {})
    assert andys.get("/").status_code == 200


def test_rejecting_an_application_needs_a_reason_and_tells_the_applicant_politely(web):
    runtime, people = web["runtime"], web["people"]
    browser(web["app"]).post("/apply", _application_form(_school(runtime, people)))
    with runtime.db.session() as session:
        application_id = session.scalar(select(AccountApplication.id))
    admin = _signed_in(web, "admin")
    path = f"/accounts/applications/{application_id}"
    silent = admin.post(path, {"decision": "reject", "reject_reason": ""})
    assert silent.status_code == 400 and "Enter the reason for rejecting" in text_of(silent)
    done = admin.post(path, {"decision": "reject", "reject_reason": "Manager says not needed"})
    assert done.status_code == 302
    with runtime.db.session() as session:
        application = session.get(AccountApplication, application_id)
    assert application.status == "rejected" and application.decision_reason == "Manager says not needed"
    [email] = _emails(runtime, "account_application_rejected")
    assert email.recipient == "andy.applicant@testshire.test" and "Thank you for applying" in email.body
    assert "Manager says not needed" not in email.body
    assert _events(runtime, "account_application_rejected")[0].detail["reason"] == "Manager says not needed"
    assert "No applications are waiting" in text_of(admin.get("/accounts/applications"))
    assert "cannot be decided again" in text_of(admin.get(path))
    assert admin.post(path, {"decision": "approve"}).status_code == 400
    assert _count(runtime, User) == 3


def test_a_duplicate_application_gets_the_same_answer_and_creates_nothing(web):
    runtime, people = web["runtime"], web["people"]
    school = _school(runtime, people)
    public = browser(web["app"])
    first = public.post("/apply", _application_form(school))
    again = public.post("/apply", _application_form(school, email="ANDY.applicant@testshire.test"))
    existing = public.post("/apply", _application_form(school, email="leah@testshire.test"))
    assert first.status_code == again.status_code == existing.status_code == 200
    assert text_of(first) == text_of(again) == text_of(existing), "no hint of who has an account"
    assert _count(runtime, AccountApplication) == 1
    assert len(_events(runtime, "account_applied")) == 1
    assert len(_emails(runtime, "account_application_received")) == 1


def test_another_authoritys_administrator_cannot_see_or_decide_an_application(web):
    runtime, people = web["runtime"], web["people"]
    other = _other_authority(runtime)
    browser(web["app"]).post("/apply", _application_form(_school(runtime, people)))
    with runtime.db.session() as session:
        application_id = session.scalar(select(AccountApplication.id))
    otto = browser(web["app"])
    otto.sign_in("otto", other["secret"])
    assert "Andy Applicant" not in text_of(otto.get("/accounts/applications"))
    assert otto.get(f"/accounts/applications/{application_id}").status_code == 404
    rejected = otto.post(f"/accounts/applications/{application_id}", {"decision": "reject", "reject_reason": "x"},
                         token_from="/accounts")
    assert rejected.status_code == 404
    assert [e.detail["asked_for"] for e in _events(runtime, "access_denied")] == \
        [f"account application {application_id}"] * 2
    with runtime.db.session() as session:
        assert session.get(AccountApplication, application_id).status == "pending"


def test_one_network_cannot_flood_the_administrators_with_applications(runtime, people):
    client = browser(make_app(runtime))
    school = _school(runtime, people)
    statuses = [client.post("/apply", _application_form(school, email=f"applicant{i}@testshire.test")).status_code
                for i in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    assert _count(runtime, AccountApplication) == 5
