"""Process owner is a national role: a local administrator can neither give nor take it (issue 14, item 4).

Every way an administrator's pages could set a role is tried with a forged post: creating an account,
editing one (giving the role, and taking it from a process owner), approving an application. Each is
refused with a form error, changes nothing, and leaves a `role_change_refused` row in the audit trail.
"""
from __future__ import annotations

from unittest.mock import ANY

from sqlalchemy import func, select

from app import policy
from app.clock import now
from app.models import AccountApplication, AuditEvent, User

from .conftest import VETTED
from .test_accounts_admin import VETTING_FORM, _application_form, _new_account_form, _school, _signed_in
from .web import browser, text_of

NATIONAL = "Process owners are appointed nationally"


def _refusals(runtime) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == "role_change_refused")
                               .order_by(AuditEvent.id)).all()


def _role(runtime, user_id: int) -> str:
    with runtime.db.session() as session:
        return session.get(User, user_id).role


def _owner(runtime, people) -> int:
    """A process owner whose account belongs to this authority's school."""
    with runtime.db.session() as session:
        owner = User(username="owen", email="owen@testshire.test", full_name="Owen Owner", job_title="Process lead",
                     role="process_owner", organisation_id=_school(runtime, people), created_at=now(), **VETTED)
        session.add(owner)
        session.flush()
        return owner.id


def _edit_form(runtime, people, **changes) -> dict:
    return {"full_name": "Leah Lead", "job_title": "Teacher", "phone": "0100 000 111",
            "organisation_id": str(_school(runtime, people)), "reason": "Asked to maintain the process", **changes}


def test_only_an_administrator_may_give_a_role_and_never_a_national_one(web):
    runtime, people = web["runtime"], web["people"]
    with runtime.db.session() as session:
        admin, practitioner = session.get(User, people["admin"]), session.get(User, people["originator"])
    assert {role for role in ("practitioner", "administrator", "service_team", "process_owner")
            if policy.may_grant_role(admin, role)} == {"practitioner", "administrator", "service_team"}
    assert not policy.may_grant_role(practitioner, "practitioner")
    assert not policy.may_grant_role(None, "practitioner")
    assert not policy.may_grant_role(admin, "superuser"), "an unknown role is refused, not allowed"


def test_the_role_is_not_offered_on_the_administrators_pages(web):
    runtime, people = web["runtime"], web["people"]
    owner = _owner(runtime, people)
    browser(web["app"]).post("/apply", _application_form(_school(runtime, people)))
    with runtime.db.session() as session:
        application_id = session.scalar(select(AccountApplication.id))
    admin = _signed_in(web, "admin")
    for path in ("/accounts/new", f"/accounts/{people['lead']}/edit", f"/accounts/applications/{application_id}"):
        html = admin.get(path).get_data(as_text=True)
        assert 'value="practitioner"' in html, path
        assert 'value="process_owner"' not in html and "Process owner" not in html, path
    owners_page = admin.get(f"/accounts/{owner}/edit")
    html = owners_page.get_data(as_text=True)
    assert owners_page.status_code == 200 and 'data-testid="role-read-only"' in html
    assert 'name="role"' not in html, "a process owner's role is shown, never posted"
    assert "Process owner" in text_of(owners_page) and NATIONAL in text_of(owners_page)


def test_a_forged_post_creating_a_process_owner_is_refused_and_audited(web):
    runtime, people = web["runtime"], web["people"]
    admin = _signed_in(web, "admin")
    before = _count_users(runtime)
    forged = admin.post("/accounts/new", _new_account_form(_school(runtime, people), role="process_owner"))
    assert forged.status_code == 400 and NATIONAL in text_of(forged)
    assert 'value="Nina New"' in forged.get_data(as_text=True), "what was typed is kept"
    assert _count_users(runtime) == before, "no account was created"
    # The same with a vetting date wrong too: the role is still refused, and audited.
    wrong_dates = _new_account_form(_school(runtime, people), role="process_owner", **{"checked_on-day": "99"})
    assert NATIONAL in text_of(admin.post("/accounts/new", wrong_dates))
    refusals = _refusals(runtime)
    assert len(refusals) == 2 and _count_users(runtime) == before
    assert {r.actor_id for r in refusals} == {people["admin"]}
    assert refusals[0].detail["role_to"] == "process_owner" and refusals[0].detail["role_from"] is None
    assert refusals[0].detail["username"] == "nnew"


def test_a_forged_post_making_an_account_a_process_owner_is_refused_and_audited(web):
    runtime, people = web["runtime"], web["people"]
    admin = _signed_in(web, "admin")
    forged = admin.post(f"/accounts/{people['lead']}/edit",
                        _edit_form(runtime, people, full_name="Leah Renamed", role="process_owner"))
    assert forged.status_code == 400 and NATIONAL in text_of(forged)
    assert 'value="Leah Renamed"' in forged.get_data(as_text=True), "what was typed is kept"
    with runtime.db.session() as session:
        leah = session.get(User, people["lead"])
        assert (leah.role, leah.full_name) == ("practitioner", "Leah Lead"), "nothing changed"
    [refused] = _refusals(runtime)
    assert refused.actor_id == people["admin"]
    assert refused.detail == {"role_from": "practitioner", "role_to": "process_owner", "user_id": people["lead"],
                              "request_ref": ANY}
    # Nor on their own account: an administrator cannot make themselves one.
    own = admin.post(f"/accounts/{people['admin']}/edit",
                     _edit_form(runtime, people, full_name="Adam Admin", role="process_owner"))
    assert own.status_code == 400 and _role(runtime, people["admin"]) == "administrator"
    assert len(_refusals(runtime)) == 2


def test_a_process_owners_role_cannot_be_taken_away_by_a_local_administrator(web):
    runtime, people = web["runtime"], web["people"]
    owner = _owner(runtime, people)
    admin = _signed_in(web, "admin")
    path = f"/accounts/{owner}/edit"
    for role in ("practitioner", "administrator", "service_team", ""):
        forged = admin.post(path, _edit_form(runtime, people, full_name="Owen Owner", role=role))
        assert forged.status_code == 400, role
        assert _role(runtime, owner) == "process_owner", role
    assert NATIONAL in text_of(forged)
    refusals = _refusals(runtime)
    assert [r.detail["role_to"] for r in refusals] == ["practitioner", "administrator", "service_team"]
    assert all(r.detail["role_from"] == "process_owner" and r.detail["user_id"] == owner for r in refusals)
    # Their other details stay the administrator's to keep up to date; the role is left as it is.
    renamed = admin.post(path, _edit_form(runtime, people, full_name="Owen Owner-Smith"))
    assert renamed.status_code == 302
    with runtime.db.session() as session:
        owen = session.get(User, owner)
        assert (owen.full_name, owen.role) == ("Owen Owner-Smith", "process_owner")


def test_an_application_approved_with_a_forged_role_is_refused_and_audited(web):
    runtime, people = web["runtime"], web["people"]
    browser(web["app"]).post("/apply", _application_form(_school(runtime, people)))
    with runtime.db.session() as session:
        application_id = session.scalar(select(AccountApplication.id))
    admin = _signed_in(web, "admin")
    path = f"/accounts/applications/{application_id}"
    approval = {"decision": "approve", "username": "andy", "role": "process_owner",
                "approve_reason": "Confirmed with Mary by phone", **VETTING_FORM}
    forged = admin.post(path, approval)
    assert forged.status_code == 400 and NATIONAL in text_of(forged)
    assert 'value="andy"' in forged.get_data(as_text=True), "what was typed is kept"
    without_vetting = admin.post(path, {**approval, "kind": ""})
    assert without_vetting.status_code == 400 and NATIONAL in text_of(without_vetting)
    with runtime.db.session() as session:
        assert session.get(AccountApplication, application_id).status == "pending"
        assert session.scalar(select(User).where(User.username == "andy")) is None
    refusals = _refusals(runtime)
    assert len(refusals) == 2
    assert all(r.detail["application_id"] == application_id and r.detail["role_to"] == "process_owner"
               for r in refusals)
    approved = admin.post(path, {**approval, "role": "practitioner"})
    assert approved.status_code == 302 and len(_refusals(runtime)) == 2


def _count_users(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(User))
