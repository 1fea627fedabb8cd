"""Requests to targeted and specialist services: every path of the request process, with time moved."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.clock import now
from app.models import (AdminAlert, Artefact, Episode, EpisodeMember, HumanTask, OutboxMessage, Service,
                        ServiceRequest, ServiceTeamMember, User)
from app.service_requests import add_working_days, missing_evidence
from app.services.service_requests import RequestRefused, decide, start_request

from .conftest import VETTED, complete, ready_task
from .journeys import prepare, start, to_delivery

REQUEST = {"needs": "An assessment of learning needs", "support_in_place": "School SEN support since March",
           "evidence": [{"requirement": "The school's SEN support plan", "evidence": "Attached: plan, May"}]}


@pytest.fixture
def teams(runtime, people):
    """Educational Psychology (Eve) and Day Care (Dan) in the test authority."""
    with runtime.db.session() as session:
        authority_id = people["authority"]
        school = session.get(User, people["originator"]).organisation

        def member(username, name):
            user = User(username=username, email=f"{username}@testshire.test", full_name=name, role="service_team",
                        organisation_id=school.id, created_at=now(), **VETTED)
            session.add(user)
            session.flush()
            return user

        eve, dan = member("eve", "Eve Psych"), member("dan", "Dan Daycare")
        psych = Service(authority_id=authority_id, name="Educational Psychology", offers="Assessment",
                        contact_name="Duty psychologist", contact_email="edpsych@testshire.test",
                        required_evidence=["The school's SEN support plan"], response_working_days=10)
        day_care = Service(authority_id=authority_id, name="Day Care", offers="Places", contact_email="daycare@testshire.test",
                           required_evidence=[], response_working_days=5)
        psych.members.append(ServiceTeamMember(user_id=eve.id, added_at=now()))
        day_care.members.append(ServiceTeamMember(user_id=dan.id, added_at=now()))
        session.add_all([psych, day_care])
        session.flush()
        return {"psych": psych.id, "day_care": day_care.id, "eve": eve.id, "dan": dan.id}


def user(runtime, user_id):
    with runtime.db.session() as session:
        found = session.get(User, user_id)
        found.organisation  # what the policy reads, loaded before the session closes
        session.expunge_all()
        return found


def request_row(runtime, request_id) -> ServiceRequest:
    with runtime.db.session() as session:
        row = session.get(ServiceRequest, request_id)
        session.expunge(row)
        return row


def send(runtime, people, teams, episode_id, data=REQUEST) -> int:
    request_id = start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    task = ready_task(runtime, episode_id, "request_form")
    assert task.service_request_id == request_id and task.assigned_user_id == people["originator"]
    runtime.engine.complete_task(episode_id, task.id, data, people["originator"])
    return request_id


def test_accepting_adds_the_team_contact_to_the_people_involved(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    row = request_row(runtime, request_id)
    assert row.status == "sent" and row.content["needs"] == REQUEST["needs"]
    assert row.due_at.date() == add_working_days(row.sent_at, 10).date()
    task = ready_task(runtime, episode_id, "team_decision")
    assert task.service_request_id == request_id and task.assigned_user_id is None and task.lane == "Service team"
    with runtime.db.session() as session:
        notified = {m.recipient for m in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "service_request"))}
    assert notified == {"edpsych@testshire.test", "eve@testshire.test"}

    result = decide(runtime, request_id, user(runtime, teams["eve"]), {"decision": "accept", "next_steps": "We call Monday"})
    assert not result.errors
    row = request_row(runtime, request_id)
    assert (row.status, row.decided_by_id) == ("accepted", teams["eve"])
    with runtime.db.session() as session:
        member = session.scalar(select(EpisodeMember).where(EpisodeMember.episode_id == episode_id,
                                                            EpisodeMember.user_id == teams["eve"]))
        contact = session.scalar(select(Artefact).where(Artefact.episode_id == episode_id, Artefact.kind == "contact"))
        episode = session.get(Episode, episode_id)
        assert member.role == "service_contact" and member.removed_at is None
        assert contact.data["organisation"] == "Educational Psychology"
        assert episode.status == "open" and episode.stage == "assessment"
    # The episode goes on with its assessment, and can ask again.
    assert ready_task(runtime, episode_id, "complete_assessment")


def test_more_information_goes_back_to_the_practitioner_with_the_question(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    decide(runtime, request_id, user(runtime, teams["eve"]), {"decision": "more_information", "question": "Which school?"})
    row = request_row(runtime, request_id)
    assert (row.status, row.question) == ("more_information", "Which school?")
    task = ready_task(runtime, episode_id, "request_form")
    assert task.assigned_user_id == people["originator"]
    runtime.engine.complete_task(episode_id, task.id, {**REQUEST, "answer": "Test Primary"}, people["originator"])
    row = request_row(runtime, request_id)
    assert row.status == "sent" and row.content["answer"] == "Test Primary" and row.question is None
    assert ready_task(runtime, episode_id, "team_decision")


def test_redirect_hands_the_request_to_the_other_team(runtime, people, teams):
    episode_id = to_delivery(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    eve, dan = user(runtime, teams["eve"]), user(runtime, teams["dan"])
    refused = decide(runtime, request_id, eve, {"decision": "redirect", "redirect_to": str(teams["psych"]), "reason": "x"})
    assert refused.errors[0]["field"] == "redirect_to"
    decide(runtime, request_id, eve, {"decision": "redirect", "redirect_to": str(teams["day_care"]),
                                      "reason": "Day Care is better placed"})
    row = request_row(runtime, request_id)
    assert (row.service_id, row.redirected_from_id, row.status) == (teams["day_care"], teams["psych"], "sent")
    # Eve's team no longer holds it; Dan's does.
    with pytest.raises(LookupError):
        decide(runtime, request_id, eve, {"decision": "accept"})
    decide(runtime, request_id, dan, {"decision": "decline", "reason": "No places until September"})
    row = request_row(runtime, request_id)
    assert (row.status, row.decision_reason, row.decided_by_id) == ("declined", "No places until September", teams["dan"])


def test_decline_needs_a_reason_and_keeps_the_request_waiting_without_one(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    result = decide(runtime, request_id, user(runtime, teams["eve"]), {"decision": "decline"})
    assert [e["field"] for e in result.errors] == ["reason"]
    assert request_row(runtime, request_id).status == "sent"
    assert ready_task(runtime, episode_id, "team_decision")


def test_the_response_timer_reminds_the_team_and_alerts_the_administrator(runtime, people, teams):
    episode_id = prepare(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    due = request_row(runtime, request_id).due_at
    with time_machine.travel(due - timedelta(hours=1), tick=False):
        runtime.engine.wake(episode_id)
    with runtime.db.session() as session:
        assert session.scalar(select(AdminAlert).where(AdminAlert.kind == "service_response_overdue")) is None
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        runtime.engine.wake(episode_id)
    with runtime.db.session() as session:
        alert = session.scalar(select(AdminAlert).where(AdminAlert.kind == "service_response_overdue"))
        reminded = {m.recipient for m in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "service_reminder"))}
        assert alert is not None and "Educational Psychology" in alert.message
        assert reminded == {"edpsych@testshire.test", "eve@testshire.test"}
        # The decision is still waiting, and shows as overdue.
        task = session.scalar(select(HumanTask).where(HumanTask.name == "team_decision", HumanTask.status == "ready"))
        assert task.due_at == due


def test_several_requests_run_side_by_side_and_closing_the_episode_cancels_them(runtime, people, teams):
    episode_id = prepare(runtime, people)
    first = send(runtime, people, teams, episode_id)
    second = start_request(runtime, episode_id, user(runtime, people["originator"]), teams["day_care"])
    with runtime.db.session() as session:
        waiting = session.scalars(select(HumanTask.service_request_id).where(HumanTask.status == "ready",
                                                                           HumanTask.service_request_id.is_not(None))).all()
    assert sorted(waiting) == sorted([first, second])
    # The assessment is not submitted in time and the episode is deleted: the requests go with it.
    with time_machine.travel(now() + timedelta(days=36), tick=False):
        runtime.engine.wake(episode_id)
    with time_machine.travel(now() + timedelta(days=37), tick=False):
        runtime.engine.wake(episode_id)
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).status == "deleted"


def test_a_request_is_refused_before_the_assessment_and_on_a_closed_episode(runtime, people, teams):
    episode_id = start(runtime, people)
    with pytest.raises(RequestRefused, match="once the assessment has started"):
        start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    with runtime.db.session() as session:
        session.get(Episode, episode_id).status = "closed"
    with pytest.raises(RequestRefused, match="closed episode"):
        start_request(runtime, episode_id, user(runtime, people["originator"]), teams["psych"])
    with runtime.db.session() as session:
        assert session.scalar(select(ServiceRequest)) is None


def test_missing_evidence_is_named():
    service = Service(required_evidence=["The school's SEN support plan", "A health report"])
    assert missing_evidence(service, REQUEST) == ["A health report"]
    assert missing_evidence(service, {"evidence": [{"requirement": "A health report"}]}) == [
        "The school's SEN support plan", "A health report"]


def test_working_days_skip_weekends():
    from datetime import datetime, timezone
    friday = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    assert add_working_days(friday, 1).weekday() == 0
    assert add_working_days(friday, 10) == datetime(2026, 12, 4, 9, tzinfo=timezone.utc)


def test_an_episode_with_a_request_waiting_cannot_move_to_another_authority(runtime, people, teams):
    from app.services.episode_transfer import TransferRefused, import_episode
    from app.services.transfers.requests import RequestProblems

    from .conftest import other_authority
    from .transfer_release import ask, release, signed_file

    episode_id = prepare(runtime, people)
    elsewhere = other_authority(runtime, "ella")
    request_id = ask(runtime, episode_id, elsewhere["otto"])
    release(runtime, request_id, people["admin"])  # released before the request to a service was sent
    document = signed_file(runtime, request_id, people["admin"])
    send(runtime, people, teams, episode_id)
    with pytest.raises(TransferRefused, match="1 request to a service waiting for an answer"):
        import_episode(runtime, document, elsewhere["otto"], "ella@other.test")
    with pytest.raises(RequestProblems, match="waiting for an answer"):
        release(runtime, ask(runtime, episode_id, elsewhere["otto"]), people["admin"])
