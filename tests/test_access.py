"""Vetting, consent gating, withdrawal, membership and the audit of every access (issue: who may see what)."""
from __future__ import annotations

import re
from datetime import date, timedelta

import time_machine
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import main
from app.clock import now
from app.models import AuditEvent, Episode, EpisodeMember, OutboxMessage, User

from . import access_world
from .conftest import ready_task
from .web import PASSWORD, browser, csrf_token, make_app, text_of


def _signed_in(app, world, actor):
    client = browser(app)
    client.sign_in(access_world.USERNAMES[actor], world["secrets"][actor])
    return client


def _audit_count(runtime, **where) -> int:
    with runtime.db.session() as session:
        query = select(func.count()).select_from(AuditEvent)
        for column, value in where.items():
            query = query.where(getattr(AuditEvent, column) == value)
        return session.scalar(query)


# ---------------------------------------------------------------- vetting

def test_an_account_without_vetting_cannot_sign_in_and_says_why(runtime, people):
    from .web import give_credentials

    give_credentials(runtime, people["originator"])
    with runtime.db.session() as session:
        session.get(User, people["originator"]).vetting_checked_on = None
    client = browser(make_app(runtime))
    answer = client.post("/sign-in", {"username": "olive", "password": PASSWORD})
    assert answer.status_code == 400
    assert "no vetting check has been recorded" in text_of(answer)
    assert _audit_count(runtime, action="sign_in_refused") == 1


def test_an_expired_vetting_check_suspends_a_signed_in_account(runtime, people):
    from .web import give_credentials

    secret = give_credentials(runtime, people["originator"])
    client = browser(make_app(runtime))
    client.sign_in("olive", secret)
    assert client.get("/").status_code == 200
    with runtime.db.session() as session:
        session.get(User, people["originator"]).vetting_expires_on = now().date() - timedelta(days=1)
    answer = client.get("/")
    assert answer.status_code == 302 and "/sign-in" in answer.location
    with time_machine.travel(now() + timedelta(seconds=31)):
        again = client.post("/sign-in", {"username": "olive", "password": PASSWORD})
        assert "the vetting check expired on" in text_of(again)


def test_an_administrator_records_vetting_from_the_command_line(runtime, people):
    with runtime.db.session() as session:
        user = session.get(User, people["lead"])
        user.vetting_type = user.vetting_reference = user.vetting_checked_on = None
    env = {"DATABASE_URL": runtime.config.database_url}
    runner = CliRunner()
    refused = runner.invoke(main, ["users", "vet", "leah", "--type", "enhanced_dbs", "--reference", "X1",
                                   "--checked-on", "2099-01-01", "--training-on", "2025-01-01", "--by", "adam"], env=env)
    assert refused.exit_code == 1 and "today or in the past" in refused.output
    not_admin = runner.invoke(main, ["users", "vet", "leah", "--type", "enhanced_dbs", "--reference", "X1",
                                     "--checked-on", "2025-01-01", "--training-on", "2025-01-01", "--by", "olive"],
                              env=env)
    assert not_admin.exit_code == 1 and "not an administrator" in not_admin.output
    done = runner.invoke(main, ["users", "vet", "leah", "--type", "enhanced_dbs", "--reference", "001122",
                                "--checked-on", "2025-01-01", "--expires-on", "2028-01-01",
                                "--training-on", "2025-02-01", "--by", "adam"], env=env)
    assert done.exit_code == 0, done.output
    with runtime.db.session() as session:
        user = session.get(User, people["lead"])
        assert user.vetting_problem(date(2027, 1, 1)) is None
        assert user.vetting_problem(date(2028, 1, 2)) == "the vetting check expired on 2028-01-01"
        assert user.vetting_recorded_by_id == people["admin"]
    assert _audit_count(runtime, action="vetting_recorded", actor_id=people["admin"]) == 1


def test_an_administrator_records_vetting_in_the_browser(runtime, people):
    world = access_world.build(runtime, people)
    nora = world["users"]["non_member"]
    with runtime.db.session() as session:
        session.get(User, nora).vetting_checked_on = None
    app = make_app(runtime)
    admin = _signed_in(app, world, "admin")
    listing = text_of(admin.get("/accounts/vetting"))
    assert listing.index("Nora Nobody") < listing.index("Tom Team"), "accounts that cannot sign in come first"
    wrong = admin.post(f"/accounts/{nora}/vetting", {"kind": "enhanced_dbs", "reference": "NN-1",
                                                     "checked_on-day": "1", "checked_on-month": "13",
                                                     "checked_on-year": "2025"})
    assert wrong.status_code == 400
    assert "The date of the check must be a real date" in text_of(wrong) and 'value="NN-1"' in wrong.get_data(as_text=True)
    done = admin.post(f"/accounts/{nora}/vetting", {
        "kind": "enhanced_dbs", "reference": "NN-1", "checked_on-day": "1", "checked_on-month": "3",
        "checked_on-year": "2025", "expires_on-day": "1", "expires_on-month": "3", "expires_on-year": "2028",
        "training_on-day": "2", "training_on-month": "3", "training_on-year": "2025"})
    assert done.status_code == 302
    with runtime.db.session() as session:
        assert session.get(User, nora).vetting_problem(now().date()) is None
    other = _signed_in(app, world, "other_admin")
    assert other.get(f"/accounts/{nora}/vetting").status_code == 404


def test_a_shared_mailbox_cannot_have_an_account(runtime, people):
    answer = CliRunner().invoke(main, ["users", "create", "office", "--email", "office@school.test", "--name",
                                       "School Office", "--password", PASSWORD],
                                env={"DATABASE_URL": runtime.config.database_url})
    assert answer.exit_code == 1 and "one account per person" in answer.output


# ---------------------------------------------------------------- consent gating

def _status(client, path):
    return client.get(path).status_code


def test_consent_decides_who_opens_each_episode(runtime, people):
    world = access_world.build(runtime, people)
    app = make_app(runtime)
    expected = {
        "none": {"originator", "admin"},
        "given": {"originator", "lead", "member", "contributor", "admin"},
        "withdrawn": {"lead", "admin"},
    }
    for actor in ("originator", "lead", "member", "contributor", "excluded", "non_member", "admin", "other_admin"):
        client = _signed_in(app, world, actor)
        for state, episode_id in world["episodes"].items():
            status = _status(client, f"/episodes/{episode_id}")
            assert status == (200 if actor in expected[state] else 404), (actor, state, status)


def test_withdrawal_stops_sharing_at_once_and_closes_the_episode(runtime, people):
    world = access_world.build(runtime, people)
    episode_id = world["episodes"]["given"]
    app = make_app(runtime)
    member, lead = _signed_in(app, world, "member"), _signed_in(app, world, "lead")
    assert member.get(f"/episodes/{episode_id}").status_code == 200
    refused = lead.post(f"/episodes/{episode_id}/consent/withdraw", {"withdrawn_by": ""})
    assert refused.status_code == 400 and "Enter the name of the person who withdrew consent" in text_of(refused)
    done = lead.post(f"/episodes/{episode_id}/consent/withdraw",
                     {"withdrawn_by": "Pat Parent", "reason": "No longer wants help", "confirm": "yes"})
    assert done.status_code == 302 and done.location.endswith(f"/episodes/{episode_id}")
    assert member.get(f"/episodes/{episode_id}").status_code == 404
    assert _signed_in(app, world, "originator").get(f"/episodes/{episode_id}").status_code == 404
    assert lead.get(f"/episodes/{episode_id}").status_code == 200
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        assert (episode.consent_state, episode.status, episode.outcome) == ("withdrawn", "closed", "consent_withdrawn")
        told = session.scalars(select(OutboxMessage.kind).where(OutboxMessage.episode_id == episode_id)).all()
    assert "consent_withdrawn" in told
    assert _audit_count(runtime, action="consent_withdrawn", episode_id=episode_id) == 1


def test_the_excluded_service_is_named_on_the_people_page(runtime, people):
    world = access_world.build(runtime, people)
    page = _signed_in(make_app(runtime), world, "lead").get(f"/episodes/{world['episodes']['given']}/people")
    assert page.status_code == 200
    assert "Police" in text_of(page).split("Never to be shared with", 1)[1][:80]


# ---------------------------------------------------------------- membership

def test_the_lead_professional_adds_and_removes_members_with_reasons(runtime, people):
    world = access_world.build(runtime, people)
    episode_id = world["episodes"]["given"]
    app = make_app(runtime)
    lead, nora = _signed_in(app, world, "lead"), _signed_in(app, world, "non_member")
    assert nora.get(f"/episodes/{episode_id}").status_code == 404
    no_reason = lead.post(f"/episodes/{episode_id}/people", {"email": "nora@ecaf.test", "role": "tac_member"},
                          token_from=f"/episodes/{episode_id}/people")
    assert no_reason.status_code == 400 and "Enter the reason for adding this person" in text_of(no_reason)
    assert 'value="nora@ecaf.test"' in no_reason.get_data(as_text=True)
    police = lead.post(f"/episodes/{episode_id}/people", {"email": "pete@ecaf.test", "role": "tac_member",
                                                          "reason": "Attends meetings"},
                       token_from=f"/episodes/{episode_id}/people")
    assert police.status_code == 400 and "the family's consent excludes Test Police Station" in text_of(police)
    added = lead.post(f"/episodes/{episode_id}/people", {"email": "nora@ecaf.test", "role": "tac_member",
                                                         "reason": "School nurse joins the team"},
                      token_from=f"/episodes/{episode_id}/people")
    assert added.status_code == 302
    assert nora.get(f"/episodes/{episode_id}").status_code == 200
    with runtime.db.session() as session:
        row = session.scalar(select(EpisodeMember).where(EpisodeMember.episode_id == episode_id,
                                                         EpisodeMember.user_id == world["users"]["non_member"]))
    silent = lead.post(f"/episodes/{episode_id}/people/{row.id}/remove", {"reason": " "},
                       token_from=f"/episodes/{episode_id}/people")
    assert silent.status_code == 400 and "Enter the reason for removing" in text_of(silent)
    removed = lead.post(f"/episodes/{episode_id}/people/{row.id}/remove", {"reason": "Left the school"},
                        token_from=f"/episodes/{episode_id}/people")
    assert removed.status_code == 302
    assert nora.get(f"/episodes/{episode_id}").status_code == 404
    assert _audit_count(runtime, action="member_added", episode_id=episode_id, actor_id=world["users"]["lead"]) == 1
    assert _audit_count(runtime, action="member_removed", episode_id=episode_id) == 1
    # A member who is not the lead professional may look but not change the team.
    member = _signed_in(app, world, "member")
    assert member.get(f"/episodes/{episode_id}/people").status_code == 200
    assert member.post(f"/episodes/{episode_id}/people", {"email": "nora@ecaf.test", "role": "tac_member",
                                                          "reason": "x"},
                       token_from=f"/episodes/{episode_id}/people").status_code == 404


def test_nobody_is_added_to_a_closed_caf_even_by_a_forged_request(runtime, people):
    world = access_world.build(runtime, people)
    episode_id = world["episodes"]["given"]
    with runtime.db.session() as session:
        session.get(Episode, episode_id).status = "closed"
    lead = _signed_in(make_app(runtime), world, "lead")
    refused = lead.post(f"/episodes/{episode_id}/people", {"email": "nora@ecaf.test", "role": "tac_member",
                                                           "reason": "School nurse joins the team"},
                        token_from=f"/episodes/{episode_id}/people")
    assert refused.status_code == 400 and "the CAF is closed" in text_of(refused)
    with runtime.db.session() as session:
        assert session.scalar(select(EpisodeMember).where(EpisodeMember.episode_id == episode_id,
                                                          EpisodeMember.user_id == world["users"]["non_member"])) is None
    assert _audit_count(runtime, action="access_denied", episode_id=episode_id, actor_id=world["users"]["lead"]) == 1


def test_contributors_are_off_unless_the_authority_turns_them_on(runtime, people):
    world = access_world.build(runtime, people)
    from app.models import Authority

    with runtime.db.session() as session:
        session.get(Authority, people["authority"]).contributors_enabled = False
    episode_id = world["episodes"]["given"]
    lead = _signed_in(make_app(runtime), world, "lead")
    page = lead.get(f"/episodes/{episode_id}/people")
    assert "Contributor (named sections only)" not in text_of(page)
    refused = lead.post(f"/episodes/{episode_id}/people", {"email": "nora@ecaf.test", "role": "contributor",
                                                           "sections": "section_h_strengths_needs", "reason": "x"},
                        token_from=f"/episodes/{episode_id}/people")
    assert refused.status_code == 400 and "Contributors are not switched on" in text_of(refused)


# ---------------------------------------------------------------- audit completeness

def test_a_view_a_print_and_a_change_each_leave_exactly_one_audit_row(runtime, people):
    world = access_world.build(runtime, people)
    episode_id = world["episodes"]["given"]
    lead = _signed_in(make_app(runtime), world, "lead")
    task = ready_task(runtime, episode_id, "action_plan")
    for path, method, data, action in (
            (f"/episodes/{episode_id}", "get", None, "episode_viewed"),
            (f"/episodes/{episode_id}/print", "get", None, "episode_printed"),
            (f"/tasks/{task.id}", "post", {"action": "save", "actions.0.identified_need": "Sleep"}, "draft_saved")):
        token = csrf_token(lead.get(f"/episodes/{episode_id}").get_data(as_text=True))
        before = _audit_count(runtime)
        if method == "get":
            assert lead.get(path).status_code == 200
        else:
            assert lead.client.post(path, data={**data, "csrf_token": token}).status_code == 302
        assert _audit_count(runtime) == before + 1, path
        with runtime.db.session() as session:
            last = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        assert (last.action, last.actor_id, last.episode_id) == (action, world["users"]["lead"], episode_id)


def _without_nonce(response) -> str:
    """The page without what differs on every response anyway: the CSP nonce and the CSRF token
    (signed with the time, so two pages a second apart carry different ones)."""
    html = re.sub(r'nonce="[^"]+"', "", response.get_data(as_text=True))
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_guessed_ids_answer_404_like_missing_ones_and_are_audited(runtime, people):
    world = access_world.build(runtime, people)
    nora = _signed_in(make_app(runtime), world, "non_member")
    hidden, missing = world["episodes"]["given"], 999999
    for template in ("/episodes/{}", "/episodes/{}/print", "/episodes/{}/people", "/episodes/{}/diagram.bpmn"):
        a, b = nora.get(template.format(hidden)), nora.get(template.format(missing))
        assert a.status_code == b.status_code == 404
        assert _without_nonce(a) == _without_nonce(b)
    task = ready_task(runtime, hidden, "action_plan")
    assert nora.get(f"/tasks/{task.id}").status_code == 404
    assert _audit_count(runtime, action="access_denied", actor_id=world["users"]["non_member"]) >= 9


def test_recording_a_shielded_child_again_names_nobody(runtime, people):
    world = access_world.build(runtime, people)
    from app.models import Child

    with runtime.db.session() as session:
        session.get(Child, people["child"]).shielded = True
    nora = _signed_in(make_app(runtime), world, "non_member")
    answer = nora.post("/children/new", {
        "children": "1", "child-0-given_names": "Casey", "child-0-family_name": "Child",
        "child-0-date_of_birth-day": "1", "child-0-date_of_birth-month": "5", "child-0-date_of_birth-year": "2015",
        "child-0-nhs_number_missing": "not_known", "postcode": "TE1 1ST", "address": "1 Test Road",
        "authority": str(people["authority"])},
        token_from="/children/find")
    page = text_of(answer)
    assert answer.status_code == 400 and "contact the eCAF administrator" in page
    assert "Leah Lead" not in page and "0100 000 111" not in page
