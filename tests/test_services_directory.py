"""The services directory: each authority's targeted and specialist services, their evidence and teams."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.accounts import totp
from app.clock import now
from app.demo import DEMO_PASSWORD, load_demo
from app.models import AuditEvent, Authority, Service, ServiceTeamMember, User
from app.services import directory
from app.web import services_directory

from . import access_world, matrix_services
from .conftest import VETTED, other_authority
from .web import browser, csrf_token, give_credentials, make_app, text_of

DETAILS = directory.ServiceDetails(
    name="Educational Psychology", offers="Assessment and advice for children whose learning gives concern.",
    contact_name="Duty psychologist", contact_email="EdPsych@testshire.test", contact_phone="0100 000 300",
    required_evidence=["The assessment's learning section", "The school's SEN support plan"],
    response_working_days="20")
FORM = {"name": "Parenting Team", "offers": "Parenting programmes and help at home.",
        "contact_name": "Parenting duty worker", "contact_email": "parenting@testshire.test", "contact_phone": "",
        "required_evidence": "The action plan\n\n  The parents' agreement to take part  \n",
        "response_working_days": "10", "active": "yes"}


# ---------------------------------------------------------------- helpers

def _app(runtime):
    """The web app with the directory's pages, whether or not the app registers them itself."""
    app = make_app(runtime)
    if "services_directory" not in app.blueprints:
        app.register_blueprint(services_directory.bp)
    return app


def _user(runtime, username: str, role: str, organisation_id: int) -> int:
    with runtime.db.session() as session:
        user = User(username=username, email=f"{username}@testshire.test", full_name=username.title(), role=role,
                    organisation_id=organisation_id, created_at=now(), **VETTED)
        session.add(user)
        session.flush()
        return user.id


def _organisation_of(runtime, user_id: int) -> int:
    with runtime.db.session() as session:
        return session.get(User, user_id).organisation_id


def _other_authority(runtime) -> dict:
    ids = other_authority(runtime)
    ids["sid"] = _user(runtime, "sid", "service_team", ids["organisation"])
    return ids


def _admin(runtime, people) -> User:
    with runtime.db.session() as session:
        admin = session.get(User, people["admin"])
        admin.organisation  # loaded, for policy.authority_id_of outside the session
        return admin


def _create(runtime, people, details=DETAILS) -> int:
    admin = _admin(runtime, people)
    with runtime.db.session() as session:
        service, problems = directory.create_service(session, admin, details)
        assert problems == {}
        return service.id


def _events(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _count(runtime, model) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _signed_in(app, username: str, secret: str):
    client = browser(app)
    client.sign_in(username, secret)
    return client


# ---------------------------------------------------------------- creating and editing

def test_an_administrator_creates_a_service_of_their_authority_and_it_is_audited(runtime, people):
    service_id = _create(runtime, people)
    with runtime.db.session() as session:
        service = session.get(Service, service_id)
        assert (service.authority_id, service.contact_email, service.response_working_days, service.active) == \
            (people["authority"], "edpsych@testshire.test", 20, True)
        assert service.required_evidence == ["The assessment's learning section", "The school's SEN support plan"]
    [event] = _events(runtime, "service_created")
    assert (event.actor_id, event.detail) == (people["admin"], {"service_id": service_id,
                                                                "name": "Educational Psychology"})


PROBLEMS = [
    ("name", {"name": ""}, "Enter the name of the service"),
    ("name", {"name": "x" * 201}, "200 characters or fewer"),
    ("offers", {"offers": ""}, "Enter what the service offers"),
    ("offers", {"offers": "x" * 2001}, "2000 characters or fewer"),
    ("contact_name", {"contact_name": ""}, "Enter the name of the person or team"),
    ("contact_email", {"contact_email": "", "contact_phone": ""}, "email address or telephone number"),
    ("contact_email", {"contact_email": "not an email"}, "correct format"),
    ("contact_phone", {"contact_phone": "0" * 41}, "40 characters or fewer"),
    ("required_evidence", {"required_evidence": []}, "Enter the evidence a request must include"),
    ("required_evidence", {"required_evidence": ["x" * 201]}, "200 characters or fewer"),
    ("required_evidence", {"required_evidence": [f"Item {n}" for n in range(21)]}, "20 items of evidence or fewer"),
    ("required_evidence", {"required_evidence": ["The action plan", "the action plan"]}, "once"),
    ("response_working_days", {"response_working_days": "0"}, "from 1 to 60"),
    ("response_working_days", {"response_working_days": "61"}, "from 1 to 60"),
    ("response_working_days", {"response_working_days": "two weeks"}, "whole number"),
    ("response_working_days", {"response_working_days": ""}, "whole number"),
]


@pytest.mark.parametrize("field, change, message", PROBLEMS, ids=[f"{p[0]}-{i}" for i, p in enumerate(PROBLEMS)])
def test_bad_details_are_refused_and_change_nothing(runtime, people, field, change, message):
    existing = _create(runtime, people, replace(DETAILS, name="Day Care"))
    admin = _admin(runtime, people)
    with runtime.db.session() as session:
        service, problems = directory.create_service(session, admin, replace(DETAILS, **change))
        assert service is None and message in problems[field], problems
        day_care = session.get(Service, existing)
        assert directory.edit_service(session, admin, day_care, replace(DETAILS, **change))[field]
    with runtime.db.session() as session:
        assert session.get(Service, existing).name == "Day Care"
    assert _count(runtime, Service) == 1
    assert len(_events(runtime, "service_created")) == 1 and _events(runtime, "service_changed") == []


def test_a_name_is_unique_within_an_authority_only(runtime, people):
    _create(runtime, people)
    admin = _admin(runtime, people)
    with runtime.db.session() as session:
        _, problems = directory.create_service(session, admin,
                                               replace(DETAILS, name="educational psychology"))
    assert "already has a service with this name" in problems["name"]
    other = _other_authority(runtime)
    with runtime.db.session() as session:
        otto = session.get(User, other["otto"])
        otto.organisation
        service, problems = directory.create_service(session, otto, DETAILS)
        assert problems == {} and service.authority_id == other["authority"]


def test_an_edit_records_what_changed_and_saving_the_same_records_nothing(runtime, people):
    service_id = _create(runtime, people)
    day_care = _create(runtime, people, replace(DETAILS, name="Day Care"))
    admin = _admin(runtime, people)
    with runtime.db.session() as session:
        service = session.get(Service, service_id)
        renamed = replace(DETAILS, name="DAY CARE")
        assert "already has" in directory.edit_service(session, admin, service, renamed)["name"]
        assert directory.edit_service(session, admin, service, DETAILS) == {}
    assert _events(runtime, "service_changed") == []
    with runtime.db.session() as session:
        service = session.get(Service, service_id)
        changes = replace(DETAILS, response_working_days="15", required_evidence=["The action plan"], active=False)
        assert directory.edit_service(session, admin, service, changes) == {}
    with runtime.db.session() as session:
        service = session.get(Service, service_id)
        assert (service.response_working_days, service.required_evidence, service.active) == \
            (15, ["The action plan"], False)
        assert session.get(Service, day_care).name == "Day Care"
    [event] = _events(runtime, "service_changed")
    assert event.actor_id == people["admin"]
    assert event.detail == {"service_id": service_id, "changed": ["active", "required_evidence",
                                                                  "response_working_days"]}


def test_evidence_is_typed_one_item_a_line():
    assert directory.evidence_lines("  The action plan \n\n\nThe SEN support plan\n ") == \
        ["The action plan", "The SEN support plan"]


# ---------------------------------------------------------------- listing

def test_the_directory_lists_the_active_services_of_one_authority(runtime, people):
    _create(runtime, people, replace(DETAILS, name="Parenting Team"))
    _create(runtime, people, replace(DETAILS, name="Day Care"))
    _create(runtime, people, replace(DETAILS, name="Closed Service", active=False))
    other = _other_authority(runtime)
    with runtime.db.session() as session:
        session.add(Service(authority_id=other["authority"], name="Otherborough Day Care", offers="Day care",
                            contact_name="Desk", contact_email="desk@other.test", required_evidence=["Plan"]))
    with runtime.db.session() as session:
        reader, elsewhere = session.get(User, people["originator"]), session.get(User, other["sid"])
        assert [s.name for s in directory.services_of(session, reader)] == ["Day Care", "Parenting Team"]
        assert [s.name for s in directory.services_of(session, reader, active_only=False)] == \
            ["Closed Service", "Day Care", "Parenting Team"]
        assert [s.name for s in directory.services_of(session, elsewhere)] == ["Otherborough Day Care"]
        assert directory.services_of(session, None) == []


# ---------------------------------------------------------------- team members

def test_only_service_team_accounts_of_the_authority_join_a_service(runtime, people):
    service_id = _create(runtime, people)
    school = _organisation_of(runtime, people["admin"])
    sally = _user(runtime, "sally", "service_team", school)
    other = _other_authority(runtime)
    admin = _admin(runtime, people)
    refusals = [("", "Enter the work email"), ("nobody@testshire.test", "no account with this email"),
                ("sid@testshire.test", "no account with this email"),  # a service team account elsewhere
                ("olive@testshire.test", "does not have a service team account")]
    with runtime.db.session() as session:
        service = session.get(Service, service_id)
        for email, message in refusals:
            user, problems = directory.add_member(session, admin, service, email)
            assert user is None and message in problems["email"], (email, problems)
        user, problems = directory.add_member(session, admin, service, "SALLY@testshire.test")
        assert problems == {} and user.id == sally
        _, problems = directory.add_member(session, admin, service, "sally@testshire.test")
        assert "already a member" in problems["email"]
    with runtime.db.session() as session:
        members = session.scalars(select(ServiceTeamMember)).all()
        assert [(m.service_id, m.user_id) for m in members] == [(service_id, sally)]
    assert other["sid"] not in [m.user_id for m in members]
    [event] = _events(runtime, "service_member_added")
    assert (event.actor_id, event.detail) == (people["admin"], {"service_id": service_id, "user_id": sally})

    with runtime.db.session() as session:
        service = session.get(Service, service_id)
        assert directory.remove_member(session, admin, service, members[0].id + 100) is None
        assert directory.remove_member(session, admin, service, members[0].id).id == sally
    assert _count(runtime, ServiceTeamMember) == 0
    [event] = _events(runtime, "service_member_removed")
    assert (event.actor_id, event.detail) == (people["admin"], {"service_id": service_id, "user_id": sally})


# ---------------------------------------------------------------- pages

def test_a_practitioner_reads_the_directory_of_their_authority(web):
    runtime, people = web["runtime"], web["people"]
    _create(runtime, people)
    _create(runtime, people, replace(DETAILS, name="Closed Service", active=False))
    other = _other_authority(runtime)
    with runtime.db.session() as session:
        session.add(Service(authority_id=other["authority"], name="Otherborough Day Care", offers="Day care",
                            contact_name="Desk", contact_email="desk@other.test", required_evidence=["Plan"]))
    client = _signed_in(_app(runtime), "olive", web["secrets"]["originator"])
    page = client.get("/services")
    assert page.status_code == 200
    text = text_of(page)
    for shown in ("Educational Psychology", "Assessment and advice", "Duty psychologist", "edpsych@testshire.test",
                  "0100 000 300", "The school's SEN support plan", "20 working days"):
        assert shown in text, shown
    for hidden in ("Closed Service", "Otherborough", "Add a service", "Change"):
        assert hidden not in text, hidden


def test_an_administrator_adds_a_service_with_the_form_and_sees_problems_with_what_they_typed(web):
    runtime = web["runtime"]
    client = _signed_in(_app(runtime), "adam", web["secrets"]["admin"])
    bad = client.post("/services/new", {**FORM, "response_working_days": "90", "contact_email": "",
                                        "contact_phone": ""})
    assert bad.status_code == 400
    html, text = bad.get_data(as_text=True), text_of(bad)
    assert "govuk-error-summary" in html and 'href="#response-working-days"' in html
    assert "from 1 to 60" in text and "email address or telephone number" in text
    assert 'value="Parenting Team"' in html and 'value="90"' in html and "The parents&#39; agreement" in html
    assert _count(runtime, Service) == 0

    done = client.post("/services/new", FORM)
    assert done.status_code == 302
    with runtime.db.session() as session:
        service = session.scalar(select(Service))
        assert service.required_evidence == ["The action plan", "The parents' agreement to take part"]
        assert service.contact_phone is None and service.active
    assert done.location.endswith(f"/services/{service.id}/edit")
    listing = text_of(client.get("/services"))
    assert "Parenting Team" in listing and "Add a service" in listing


def test_an_administrator_edits_a_service_and_manages_its_team(web):
    runtime, people = web["runtime"], web["people"]
    service_id = _create(runtime, people)
    sally = _user(runtime, "sally", "service_team", _organisation_of(runtime, people["admin"]))
    client = _signed_in(_app(runtime), "adam", web["secrets"]["admin"])
    edit = f"/services/{service_id}/edit"
    assert 'value="Educational Psychology"' in client.get(edit).get_data(as_text=True)

    bad = client.post(edit, {**FORM, "name": ""})
    assert bad.status_code == 400 and "Enter the name of the service" in text_of(bad)
    assert 'value="Parenting duty worker"' in bad.get_data(as_text=True)
    assert client.post(edit, {**FORM, "active": ""}).status_code == 302
    with runtime.db.session() as session:
        assert (session.get(Service, service_id).name, session.get(Service, service_id).active) == \
            ("Parenting Team", False)
    assert "Taken out of the directory" in text_of(client.get("/services"))

    refused = client.post(f"/services/{service_id}/members", {"email": "olive@testshire.test"}, token_from=edit)
    assert refused.status_code == 400 and "does not have a service team account" in text_of(refused)
    assert 'value="olive@testshire.test"' in refused.get_data(as_text=True)
    added = client.post(f"/services/{service_id}/members", {"email": "sally@testshire.test"}, token_from=edit)
    assert added.status_code == 302
    page = client.get(edit)
    assert "Sally" in text_of(page)
    with runtime.db.session() as session:
        member_id = session.scalar(select(ServiceTeamMember.id).where(ServiceTeamMember.user_id == sally))
    remove = f"/services/{service_id}/members/{member_id}/remove"
    assert client.post(remove, token_from=edit).status_code == 302
    assert client.post(remove, token_from=edit).status_code == 404
    assert [e.action for e in _events(runtime, "service_member_added") + _events(runtime, "service_member_removed")] \
        == ["service_member_added", "service_member_removed"]


def test_another_authoritys_service_is_not_found_and_the_attempt_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    service_id = _create(runtime, people)
    other = _other_authority(runtime)
    secret = give_credentials(runtime, other["otto"])
    client = _signed_in(_app(runtime), "otto", secret)
    edit = f"/services/{service_id}/edit"
    assert client.get(edit).status_code == 404
    token = csrf_token(client.get("/services").get_data(as_text=True))
    for path, data in ((edit, FORM), (f"/services/{service_id}/members", {"email": "sid@testshire.test"})):
        assert client.client.post(path, data={**data, "csrf_token": token}).status_code == 404
    assert "Educational Psychology" not in text_of(client.get("/services"))
    denied = [e for e in _events(runtime, "access_denied") if e.actor_id == other["otto"]]
    assert [e.detail["asked_for"] for e in denied] == [f"service {service_id}"] * 3
    with runtime.db.session() as session:
        assert session.get(Service, service_id).name == "Educational Psychology"
    assert _count(runtime, ServiceTeamMember) == 0


def test_every_actor_gets_the_answer_the_matrix_cases_say(runtime, people):
    """The cases of tests/matrix_services.py, run on their own over the access world."""
    from .test_authorization_matrix import ANONYMOUS, Case, admin_record_rule, by_role, episode_rule
    from .test_authorization_matrix import ADMINS, PRACTITIONERS, SIGNED_IN

    world = access_world.build(runtime, people)
    matrix_services.seed(runtime, world)
    rules = SimpleNamespace(Case=Case, by_role=by_role, episode_rule=episode_rule, ANONYMOUS=ANONYMOUS,
                            ADMINS=ADMINS, PRACTITIONERS=PRACTITIONERS, SIGNED_IN=SIGNED_IN,
                            admin_record_rule=admin_record_rule)
    app = _app(runtime)
    cases = matrix_services.cases(world, {}, rules)
    ours = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("services_directory.")}
    assert ours == set(cases)
    wrong = []
    for actor in (ANONYMOUS,) + access_world.ACTORS:
        client = browser(app)
        if actor == ANONYMOUS:
            token = csrf_token(client.get("/sign-in").get_data(as_text=True))
        else:
            client.sign_in(access_world.USERNAMES[actor], world["secrets"][actor])
            token = csrf_token(client.get("/account").get_data(as_text=True))
        for case in (c for endpoint_cases in cases.values() for c in endpoint_cases):
            if case.method == "GET":
                got = client.get(case.path).status_code
            else:
                got = client.client.post(case.path, data={**(case.data or {}), "csrf_token": token}).status_code
            if got != case.expect(actor):
                wrong.append(f"{actor:12} {case.method:4} {case.path:40} expected {case.expect(actor)}, got {got}")
    assert not wrong, "\n" + "\n".join(wrong)


# ---------------------------------------------------------------- the demo

def test_the_demo_has_four_services_and_two_service_team_accounts(runtime):
    assert load_demo(runtime.db, runtime.engine) is True
    with runtime.db.session() as session:
        authority = session.scalar(select(Authority).where(Authority.code == "WST"))
        reader = session.scalar(select(User).where(User.role == "administrator", User.organisation.has(
            authority_id=authority.id)))
        services = directory.services_of(session, reader)
        assert [s.name for s in services] == ["Day Care", "Disabled Children's Team", "Educational Psychology",
                                              "Parenting Team"]
        by_name = {s.name: s for s in services}
        assert "The school's SEN support plan" in by_name["Educational Psychology"].required_evidence
        assert all(s.offers and s.contact_email and s.required_evidence for s in services)
        teams = {s.name: [m.user.username for m in s.members] for s in services}
        assert teams == {"Day Care": ["dan.daycare"], "Disabled Children's Team": [],
                         "Educational Psychology": ["eve.psych"], "Parenting Team": []}
        eve = session.scalar(select(User).where(User.username == "eve.psych"))
        assert eve.role == "service_team" and eve.authority.id == authority.id
        assert eve.vetting_problem(now().date()) is None
        secret = totp.unseal(runtime.config, eve.totp_secret)
    client = browser(_app(runtime))
    client.sign_in("eve.psych", secret, password=DEMO_PASSWORD)
    text = text_of(client.get("/services"))
    assert "Disabled Children's Team" in text and "Two terms of support in place" in text
    assert "You are a member of this team" in text
