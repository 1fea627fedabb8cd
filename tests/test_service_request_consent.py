"""The family's consent on every path of a request to a service, and of a contribution.

A service is kept out when the consent names it, or excludes the organisation (or kind of
organisation) of anyone on its team: it is not offered, a post naming it is refused and audited,
a consent change cancels its open requests (team and practitioner told) and its team no longer
sees them; a contributor the consent shuts out loses the contribution.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app import consent, membership
from app.clock import now
from app.models import (Authority, AuditEvent, Contribution, Episode, HumanTask, Organisation, OutboxMessage, Service,
                        ServiceRequest, ServiceTeamMember, User)
from app.services import episode_people
from app.services.contributions import invite
from app.services.service_requests import RequestRefused, decide, inbox, start_request
from tests.test_service_requests import REQUEST, request_row, teams, user  # noqa: F401 - teams is a fixture

from .conftest import VETTED, other_authority
from .journeys import CONSENT, prepare
from .web import browser, give_credentials, make_app, text_of

HEALTH_CONSENT = {**CONSENT, "excluded_services": ["health_visiting"]}


@pytest.fixture
def health(runtime, people, teams):
    """Health Visiting Support, whose team is Hana from a health visiting organisation."""
    with runtime.db.session() as session:
        organisation = Organisation(name="Northside Health Visiting", kind="health_visiting",
                                    authority_id=people["authority"])
        session.add(organisation)
        session.flush()
        hana = User(username="hana", email="hana@testshire.test", full_name="Hana Health", role="service_team",
                    organisation_id=organisation.id, created_at=now(), **VETTED)
        session.add(hana)
        session.flush()
        service = Service(authority_id=people["authority"], name="Health Visiting Support", offers="Home visits",
                          contact_email="hv@testshire.test", required_evidence=[], response_working_days=5)
        service.members.append(ServiceTeamMember(user_id=hana.id, added_at=now()))
        session.add(service)
        session.flush()
        return {"service": service.id, "hana": hana.id, "organisation": organisation.id}


def _new_statement(runtime, episode_id: int, data: dict, by: int) -> None:
    """A new consent statement for a running episode, as a later process version records one."""
    with runtime.db.session() as session:
        consent.record_statement(session, session.get(Episode, episode_id), data, recorded_by_id=by)


def _audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
        session.expunge_all()
        return rows


def _send(runtime, people, episode_id: int, service_id: int) -> int:
    request_id = start_request(runtime, episode_id, user(runtime, people["originator"]), service_id)
    task = [t for t in _ready_for(runtime, request_id) if t.name == "request_form"][0]
    runtime.engine.complete_task(episode_id, task.id, REQUEST, people["originator"])
    return request_id


def _ready_for(runtime, request_id: int) -> list[HumanTask]:
    with runtime.db.session() as session:
        return session.scalars(select(HumanTask).where(HumanTask.service_request_id == request_id,
                                                       HumanTask.status == "ready")).all()


def _count_requests(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(ServiceRequest))


# ---------------------------------------------------------------- asking

def test_an_excluded_service_is_not_offered_and_a_forged_post_is_refused_and_audited(runtime, people, teams, health,
                                                                                      tmp_path):
    episode_id = prepare(runtime, people)
    _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])
    olive = browser(make_app(runtime))
    olive.sign_in("olive", give_credentials(runtime, people["originator"]))
    page = text_of(olive.get(f"/episodes/{episode_id}/service-requests"))
    assert "Educational Psychology" in page
    assert 'value="%d"' % health["service"] not in olive.get(f"/episodes/{episode_id}/service-requests").get_data(
        as_text=True)
    assert "The family's consent excludes Health visiting and school nursing" in page

    forged = olive.post(f"/episodes/{episode_id}/service-requests", {"service": str(health["service"])})
    assert forged.status_code == 400
    assert "consent excludes Health visiting and school nursing" in text_of(forged)
    assert _count_requests(runtime) == 0
    refused = _audited(runtime, "service_request_refused")
    assert [(r.actor_id, r.episode_id, r.detail["service_id"]) for r in refused] == [
        (people["originator"], episode_id, health["service"])]
    # The service the consent allows is still asked as before.
    assert start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])


def test_a_service_named_in_the_consent_is_refused_with_the_reason(runtime, people, teams):
    episode_id = prepare(runtime, people)
    _new_statement(runtime, episode_id, {**CONSENT, "excluded_recipients": ["educational psychology"]},
                   people["originator"])
    with pytest.raises(RequestRefused, match="consent excludes Educational Psychology"):
        start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    assert _count_requests(runtime) == 0 and len(_audited(runtime, "service_request_refused")) == 1


def test_a_service_of_another_authority_is_refused_and_audited(runtime, people, teams):
    episode_id = prepare(runtime, people)
    elsewhere = other_authority(runtime)
    with runtime.db.session() as session:
        theirs = Service(authority_id=elsewhere["authority"], name="Their Service", offers="x", required_evidence=[])
        session.add(theirs)
        session.flush()
        theirs_id = theirs.id
    with pytest.raises(RequestRefused, match="Select the service"):
        start_request(runtime, episode_id, user(runtime, people["originator"]), theirs_id)
    assert _count_requests(runtime) == 0
    assert [r.detail["service_id"] for r in _audited(runtime, "service_request_refused")] == [theirs_id]


def test_a_team_cannot_pass_a_request_to_a_service_the_consent_excludes(runtime, people, teams, health):
    episode_id = prepare(runtime, people)
    _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])
    request_id = _send(runtime, people, episode_id, teams["psych"])
    refused = decide(runtime, request_id, user(runtime, teams["eve"]),
                     {"decision": "redirect", "redirect_to": str(health["service"]), "reason": "Better placed"})
    assert refused.errors[0]["field"] == "redirect_to"
    assert request_row(runtime, request_id).service_id == teams["psych"]


def test_a_request_is_not_sent_once_an_excluded_person_joins_the_services_team(runtime, people, teams, health):
    from app.services import called_tasks

    episode_id = prepare(runtime, people)
    _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])
    request_id = start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    with runtime.db.session() as session:  # Hana, of a health visiting organisation, joins the team
        session.add(ServiceTeamMember(service_id=teams["psych"], user_id=health["hana"], added_at=now()))
    task = [t for t in _ready_for(runtime, request_id) if t.name == "request_form"][0]
    with runtime.db.session() as session:
        problems = called_tasks.problems(session, session.get(HumanTask, task.id), REQUEST)
    assert "consent excludes Health visiting and school nursing" in problems[0]["message"]
    # Sent all the same (a post racing the team change): the step refuses and tells nobody.
    result = runtime.engine.complete_task(episode_id, task.id, REQUEST, people["originator"])
    assert result.status == "error" and request_row(runtime, request_id).status == "draft"
    with runtime.db.session() as session:
        assert session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "service_request")) is None


# ---------------------------------------------------------------- a consent change

def test_a_consent_change_cancels_the_excluded_services_open_requests_and_hides_them(runtime, people, teams, health):
    episode_id = prepare(runtime, people)
    sent = _send(runtime, people, episode_id, health["service"])
    draft = start_request(runtime, episode_id, user(runtime, people["originator"]), health["service"])
    kept = _send(runtime, people, episode_id, teams["psych"])
    hana = user(runtime, health["hana"])
    with runtime.db.session() as session:
        assert [r.request.id for r in inbox(session, hana)] == [sent]

    _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])

    assert request_row(runtime, sent).status == "cancelled" and request_row(runtime, draft).status == "cancelled"
    assert "consent excludes Health visiting" in request_row(runtime, sent).decision_reason
    assert request_row(runtime, kept).status == "sent" and _ready_for(runtime, kept)
    assert not _ready_for(runtime, sent) and not _ready_for(runtime, draft)
    cancelled = _audited(runtime, "service_request_cancelled")
    assert sorted(r.detail["request"] for r in cancelled) == sorted([sent, draft])
    with runtime.db.session() as session:
        told = {(m.recipient, m.kind) for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "service_request_cancelled"))}
        # The team hears only of the request it had; the practitioner of both.
        assert told == {("hv@testshire.test", "service_request_cancelled"),
                        ("hana@testshire.test", "service_request_cancelled"),
                        ("olive@testshire.test", "service_request_cancelled")}
        assert inbox(session, hana, show_all=True) == []
    with pytest.raises(LookupError):
        decide(runtime, sent, hana, {"decision": "accept"})
    # The response time passing later reminds nobody, and no step brings the tasks back.
    due = request_row(runtime, kept).due_at
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        runtime.engine.wake(episode_id)
    with runtime.db.session() as session:
        reminded = {m.recipient for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "service_reminder"))}
    assert reminded == {"edpsych@testshire.test", "eve@testshire.test"}
    assert not _ready_for(runtime, sent) and not _ready_for(runtime, draft)


def test_the_team_inbox_applies_exclusions_to_answered_requests_too(runtime, people, teams, health):
    episode_id = prepare(runtime, people)
    request_id = _send(runtime, people, episode_id, health["service"])
    hana = user(runtime, health["hana"])
    assert not decide(runtime, request_id, hana, {"decision": "decline", "reason": "Full"}).errors
    with runtime.db.session() as session:
        assert [r.request.id for r in inbox(session, hana, show_all=True)] == [request_id]
    _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])
    assert request_row(runtime, request_id).status == "declined"  # answered: nothing to cancel
    with runtime.db.session() as session:
        assert inbox(session, hana, show_all=True) == []


def test_a_service_named_later_in_the_consent_disappears_from_its_team(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = _send(runtime, people, episode_id, teams["psych"])
    eve = user(runtime, teams["eve"])
    assert not decide(runtime, request_id, eve, {"decision": "decline", "reason": "Full"}).errors
    _new_statement(runtime, episode_id, {**CONSENT, "excluded_recipients": ["Educational Psychology"]},
                   people["originator"])
    with runtime.db.session() as session:
        assert inbox(session, eve, show_all=True) == []
    web = browser(make_app(runtime))
    web.sign_in("eve", give_credentials(runtime, teams["eve"]))
    assert web.get(f"/team/requests/{request_id}").status_code == 404


def test_a_decision_a_moment_after_the_consent_changes_is_not_recorded(runtime, people, teams, health, monkeypatch):
    """The team's checks pass, then the consent changes before the step that records the decision:
    the step asks the policy again and refuses, and nobody joins the episode."""
    episode_id = prepare(runtime, people)
    request_id = _send(runtime, people, episode_id, health["service"])
    real = runtime.engine.complete_task

    def consent_changes_first(*args, **kwargs):
        _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime.engine, "complete_task", consent_changes_first)
    with pytest.raises(LookupError):
        decide(runtime, request_id, user(runtime, health["hana"]), {"decision": "accept", "next_steps": "Call"})
    assert request_row(runtime, request_id).status == "cancelled"
    with runtime.db.session() as session:
        assert membership.membership_of(session, session.get(Episode, episode_id), health["hana"]) is None


def test_a_withdrawal_cancels_every_open_request_and_tells_the_team(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = _send(runtime, people, episode_id, teams["psych"])
    change = episode_people.withdraw_consent(runtime, episode_id, user(runtime, people["originator"]),
                                             {"withdrawn_by": "Pat Parent", "reason": "Moving", "confirm": "yes"})
    assert not change.errors
    assert request_row(runtime, request_id).status == "cancelled"
    assert [r.detail["request"] for r in _audited(runtime, "service_request_cancelled")] == [request_id]
    eve = user(runtime, teams["eve"])
    with runtime.db.session() as session:
        told = {m.recipient for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "service_request_cancelled"))}
        assert told == {"edpsych@testshire.test", "eve@testshire.test", "olive@testshire.test"}
        assert inbox(session, eve, show_all=True) == []


def test_a_contributor_the_consent_now_excludes_loses_the_contribution(runtime, people, health):
    with runtime.db.session() as session:
        session.get(Authority, people["authority"]).contributors_enabled = True
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        nurse = User(username="nina", email="nina@testshire.test", full_name="Nina Nurse", role="practitioner",
                     organisation_id=health["organisation"], created_at=now(), **VETTED)
        session.add(nurse)
        session.flush()
        membership.add(session, session.get(Episode, episode_id), nurse, "tac_member", by_id=people["originator"])
        nurse_id = nurse.id
    olive = user(runtime, people["originator"])
    assert not invite(runtime, episode_id, olive, {"member": str(nurse_id), "sections": ["section_k_voice"]}).errors
    with runtime.db.session() as session:
        contribution_id = session.scalar(select(Contribution.id))
        assert session.scalar(select(HumanTask).where(HumanTask.contribution_id == contribution_id,
                                                      HumanTask.status == "ready")).assigned_user_id == nurse_id

    _new_statement(runtime, episode_id, HEALTH_CONSENT, people["originator"])

    with runtime.db.session() as session:
        assert session.get(Contribution, contribution_id).status == "cancelled"
        assert session.scalar(select(HumanTask).where(HumanTask.contribution_id == contribution_id,
                                                      HumanTask.status == "ready")) is None
        assert session.scalar(select(OutboxMessage.recipient).where(
            OutboxMessage.kind == "contribution_cancelled")) == "nina@testshire.test"
    assert [r.detail["contribution"] for r in _audited(runtime, "contribution_cancelled")] == [contribution_id]
    # And she is not offered for another invitation.
    refused = invite(runtime, episode_id, olive, {"member": str(nurse_id), "sections": ["section_k_voice"]})
    assert refused.errors["member"] == "Select a member of the episode to invite"


# ---------------------------------------------------------------- audited lists

def test_the_inbox_and_the_episode_requests_page_are_audited(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = _send(runtime, people, episode_id, teams["psych"])
    app = make_app(runtime)
    eve = browser(app)
    eve.sign_in("eve", give_credentials(runtime, teams["eve"]))
    assert eve.get("/team/requests").status_code == 200
    listed = _audited(runtime, "request_list_viewed")
    assert [(r.actor_id, r.detail["episodes"], r.detail["requests"]) for r in listed] == [
        (teams["eve"], [episode_id], [request_id])]
    olive = browser(app)
    olive.sign_in("olive", give_credentials(runtime, people["originator"]))
    assert olive.get(f"/episodes/{episode_id}/service-requests").status_code == 200
    viewed = _audited(runtime, "service_requests_viewed")
    assert [(r.actor_id, r.episode_id, r.detail["requests"]) for r in viewed] == [
        (people["originator"], episode_id, [request_id])]
