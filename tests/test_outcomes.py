"""Headline outcomes: chosen at the action plan, progress at each review and at closure, and the
six-month check after a closure with outcomes met (a timer in the Closure stage of the process),
answered by the lead professional or, when they have left, an administrator of the authority."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.engine.errors import EpisodeNotOpen, FormInvalid, NotPermitted
from app.jobs.sweep import sweep_timers
from app.models import AuditEvent, Episode, HumanTask, OutboxMessage, OutcomeRecord, User
from app.services import task_forms, task_list

from .conftest import complete, ready_task
from .journeys import to_delivery, today
from .test_service_requests import teams  # noqa: F401 - a fixture

PLAN = ["education", "housing"]


def plan_with(runtime, people, chosen=PLAN) -> int:
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat()})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    complete(runtime, episode_id, "action_plan", {
        "headline_outcomes": chosen, "next_review_date": (today() + timedelta(days=28)).isoformat()})
    return episode_id


def submit(runtime, user_id: int, episode_id: int, name: str, data: dict):
    """Complete a task the way the task page does: policy and outcome checks inside the step."""
    task = ready_task(runtime, episode_id, name)
    with runtime.db.session() as session:
        user = session.get(User, user_id)
    return task_forms.complete(runtime.engine, user, episode_id, task.id, data)


def progress(**by_outcome) -> dict:
    return {code: {"progress": p, **({"evidence": f"Evidence for {code}"} if p == "met" else {})}
            for code, p in by_outcome.items()}


def close_with(runtime, people, episode_id, **by_outcome):
    submit(runtime, people["lead"], episode_id, "review", {
        "review_date": today().isoformat(), "outcome": "close",
        "outcome_progress": progress(education="some_progress", housing="some_progress")})
    return submit(runtime, people["lead"], episode_id, "final_summary", {
        "closure_reason": "needs_met", "outcome_progress": progress(**by_outcome)})


def records(runtime, episode_id, stage=None) -> list[tuple[str, str, str]]:
    with runtime.db.session() as session:
        query = select(OutcomeRecord).where(OutcomeRecord.episode_id == episode_id).order_by(OutcomeRecord.id)
        if stage:
            query = query.where(OutcomeRecord.stage == stage)
        return [(r.stage, r.outcome, r.progress) for r in session.scalars(query)]


def episode(runtime, episode_id) -> Episode:
    with runtime.db.session() as session:
        return session.get(Episode, episode_id)


def ready_rows(runtime, episode_id) -> list[HumanTask]:
    with runtime.db.session() as session:
        return list(session.scalars(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                            HumanTask.status == "ready")))


def audited(runtime, action) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# ---------------------------------------------------------------- choosing and progress

def test_the_action_plan_chooses_headline_outcomes_and_keeps_them_as_rows(runtime, people):
    episode_id = plan_with(runtime, people)
    assert records(runtime, episode_id) == [("action_plan", "education", "chosen"),
                                            ("action_plan", "housing", "chosen")]
    assert audited(runtime, "outcomes_recorded")[0].detail["outcomes"] == {"education": "chosen",
                                                                           "housing": "chosen"}


def test_an_action_plan_without_a_headline_outcome_is_refused(runtime, people):
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat()})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    for chosen in ([], ["not_an_outcome"]):
        with pytest.raises(FormInvalid) as refused:
            complete(runtime, episode_id, "action_plan", {
                "headline_outcomes": chosen, "next_review_date": (today() + timedelta(days=28)).isoformat()})
        assert [e["field"] for e in refused.value.errors] == ["headline_outcomes" if not chosen
                                                              else "headline_outcomes.0"]
    assert ready_task(runtime, episode_id, "action_plan") is not None
    assert records(runtime, episode_id) == []


def test_a_review_records_progress_against_each_chosen_outcome(runtime, people):
    episode_id = plan_with(runtime, people)
    submit(runtime, people["lead"], episode_id, "review", {
        "review_date": today().isoformat(), "outcome": "continue",
        "next_review_date": (today() + timedelta(days=30)).isoformat(),
        "outcome_progress": progress(education="met", housing="not_started")})
    assert records(runtime, episode_id, "review") == [("review", "education", "met"),
                                                      ("review", "housing", "not_started")]
    with runtime.db.session() as session:
        evidence = session.scalar(select(OutcomeRecord.evidence).where(OutcomeRecord.stage == "review",
                                                                       OutcomeRecord.outcome == "education"))
    assert evidence == "Evidence for education"


@pytest.mark.parametrize("outcome_progress, field, message", [
    ({**progress(education="some_progress", housing="met"), "crime": {"progress": "some_progress"}},
     "outcome_progress.crime", "“Crime prevention and tackling crime” is not one of the headline outcomes chosen"),
    (progress(education="some_progress"), "outcome_progress.housing.progress",
     "Select the progress towards “Secure housing”"),
    ({"education": {"progress": "met"}, "housing": {"progress": "not_met"}}, "outcome_progress.education.evidence",
     "Enter the evidence"),
])
def test_bad_progress_is_refused_with_a_clear_message_and_nothing_changes(runtime, people, outcome_progress, field,
                                                                          message):
    episode_id = plan_with(runtime, people)
    task = ready_task(runtime, episode_id, "review")
    with pytest.raises(FormInvalid) as refused:
        submit(runtime, people["lead"], episode_id, "review", {
            "review_date": today().isoformat(), "outcome": "close", "outcome_progress": outcome_progress})
    found = {e["field"]: e["message"] for e in refused.value.errors}
    assert field in found and found[field].startswith(message)
    assert ready_task(runtime, episode_id, "review").id == task.id
    assert records(runtime, episode_id, "review") == []
    # The task page asks the same questions before the step, and shows only the chosen outcomes.
    with runtime.db.session() as session:
        opened = task_forms.open_task(session, session.get(User, people["lead"]), task.id)
        assert list(opened.schema["properties"]["outcome_progress"]["properties"]) == PLAN
        shown = task_forms.submission_problems(session, opened, {
            "review_date": today().isoformat(), "outcome": "close", "outcome_progress": outcome_progress}, [])
    assert field in {e["field"] for e in shown}


# ---------------------------------------------------------------- the six-month check

def test_closure_with_outcomes_met_waits_six_months_then_asks_the_lead_professional(runtime, people):
    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="met", housing="not_met")
    closed = episode(runtime, episode_id)
    assert (closed.status, closed.stage, closed.outcome) == ("closed", "closed", "needs_met")
    assert records(runtime, episode_id, "closure") == [("closure", "education", "met"),
                                                       ("closure", "housing", "not_met")]
    due = closed.next_timer_at
    assert due is not None and (due - closed.closed_at) >= timedelta(days=181)
    assert (due - closed.closed_at) <= timedelta(days=184)
    assert ready_rows(runtime, episode_id) == [], "a closed episode offers no tasks while it waits"
    # A closed episode is closed for every other purpose: no messages, and a new CAF may be started.
    with pytest.raises(EpisodeNotOpen):
        runtime.engine.send_message(episode_id, "consent_withdrawn", {}, people["lead"])
    assert runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"]).status == "open"

    with time_machine.travel(due - timedelta(days=1), tick=False):
        assert sweep_timers(runtime).woken == 0
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert sweep_timers(runtime).woken == 1
        [check] = ready_rows(runtime, episode_id)
        assert (check.name, check.assigned_user_id, check.lane) == ("sustained_check", people["lead"],
                                                                    "Lead professional")
        with runtime.db.session() as session:
            listed = task_list.ready_tasks(session, session.get(User, people["lead"]), set())
            opened = task_forms.open_task(session, session.get(User, people["lead"]), check.id)
        assert [row.task_id for row in listed] == [check.id]
        assert list(opened.schema["properties"]["outcome_sustained"]["properties"]) == ["education"]
        with runtime.db.session() as session:
            sent = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "outcome_check_due"))
        assert sent.recipient == people["lead_email"]

        with pytest.raises(FormInvalid) as refused:
            submit(runtime, people["lead"], episode_id, "sustained_check", {
                "checked_on": today().isoformat(), "outcome_sustained": {"education": {"sustained": "yes"}}})
        assert "outcome_sustained.education.evidence" in {e["field"] for e in refused.value.errors}
        with pytest.raises(FormInvalid) as refused:
            submit(runtime, people["lead"], episode_id, "sustained_check", {
                "checked_on": today().isoformat(), "outcome_sustained": {
                    "education": {"sustained": "yes", "evidence": "Attending every day"},
                    "housing": {"sustained": "no", "evidence": "Was never met"}}})
        assert "outcome_sustained.housing" in {e["field"] for e in refused.value.errors}
        assert records(runtime, episode_id, "six_months") == []

        result = submit(runtime, people["lead"], episode_id, "sustained_check", {
            "checked_on": today().isoformat(),
            "outcome_sustained": {"education": {"sustained": "yes", "evidence": "Attending every day"}}})
    assert result.status == "closed"
    finished = episode(runtime, episode_id)
    assert (finished.status, finished.next_timer_at, finished.outcome) == ("closed", None, "needs_met")
    assert records(runtime, episode_id, "six_months") == [("six_months", "education", "sustained")]
    assert {e.detail["stage"] for e in audited(runtime, "outcomes_recorded")} >= {"closure", "six_months"}
    assert ready_rows(runtime, episode_id) == []


def test_no_six_month_check_when_no_outcome_was_met(runtime, people):
    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="not_met", housing="some_progress")
    closed = episode(runtime, episode_id)
    assert (closed.status, closed.next_timer_at) == ("closed", None)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "outcome_check_due")) == 0
    with time_machine.travel(now() + timedelta(days=200), tick=False):
        assert sweep_timers(runtime).woken == 0
    assert ready_rows(runtime, episode_id) == []


def test_the_check_goes_to_an_administrator_when_the_lead_professional_has_left(runtime, people):
    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="met", housing="met")
    with runtime.db.session() as session:
        session.get(User, people["lead"]).active = False
    due = episode(runtime, episode_id).next_timer_at
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert sweep_timers(runtime).woken == 1
        [check] = ready_rows(runtime, episode_id)
        assert (check.name, check.lane, check.assigned_user_id) == ("sustained_check_by_administrator",
                                                                    "Administrator", None)
        with runtime.db.session() as session:
            sent = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "outcome_check_due"))
            assert sent.recipient == "admin@testshire.test"
            admin = session.get(User, people["admin"])
            assert [row.task_id for row in task_list.ready_tasks(session, admin, set())] == [check.id]
            # Someone else (the originator) may neither claim nor complete it.
            originator = session.get(User, people["originator"])
            assert task_forms.claim(session, originator, check.id) is None
        with pytest.raises(NotPermitted):
            submit(runtime, people["originator"], episode_id, "sustained_check_by_administrator", {
                "checked_on": today().isoformat(), "outcome_sustained": {
                    code: {"sustained": "yes", "evidence": "Fine"} for code in PLAN}})
        assert ready_task(runtime, episode_id, "sustained_check_by_administrator").id == check.id
        with runtime.db.session() as session:
            assert task_forms.claim(session, session.get(User, people["admin"]), check.id) is not None
        submit(runtime, people["admin"], episode_id, "sustained_check_by_administrator", {
            "checked_on": today().isoformat(), "outcome_sustained": {
                "education": {"sustained": "yes", "evidence": "Still at school"},
                "housing": {"sustained": "no", "evidence": "Evicted in May"}}})
    assert records(runtime, episode_id, "six_months") == [("six_months", "education", "sustained"),
                                                          ("six_months", "housing", "not_sustained")]
    assert episode(runtime, episode_id).next_timer_at is None


def test_a_failed_six_month_check_is_errored_for_the_administrator_and_retried_closed(runtime, people, monkeypatch):
    import handlers
    from app.engine import repair
    from app.services import admin_episodes

    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="met", housing="not_met")
    due = episode(runtime, episode_id).next_timer_at
    real = handlers.OPERATORS["outcomes/lead_professional_present"]
    monkeypatch.setitem(handlers.OPERATORS, "outcomes/lead_professional_present",
                        lambda ctx, **params: (_ for _ in ()).throw(ConnectionError("directory unavailable")))
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        sweep_timers(runtime)
        failed = episode(runtime, episode_id)
        assert (failed.status, failed.step_failed) == ("closed", True), "it stays closed, and says it failed"
        with runtime.db.session() as session:
            admin = session.get(User, people["admin"])
            assert admin_episodes.count(session, admin, "errored", stuck_after_days=14) == 1
        monkeypatch.setitem(handlers.OPERATORS, "outcomes/lead_professional_present", real)
        repair.retry(runtime.engine, episode_id, people["admin"], "The directory is back")
        retried = episode(runtime, episode_id)
        assert (retried.status, retried.step_failed) == ("closed", False)
        assert [row.name for row in ready_rows(runtime, episode_id)] == ["sustained_check"]
        with runtime.db.session() as session:
            assert admin_episodes.count(session, session.get(User, people["admin"]), "errored",
                                        stuck_after_days=14) == 0


def test_the_lead_professionals_check_is_refused_to_anyone_else(runtime, people):
    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="met", housing="not_met")
    with time_machine.travel(episode(runtime, episode_id).next_timer_at + timedelta(minutes=1), tick=False):
        sweep_timers(runtime)
        for intruder in ("originator", "admin"):
            with pytest.raises(NotPermitted):
                submit(runtime, people[intruder], episode_id, "sustained_check", {
                    "checked_on": today().isoformat(),
                    "outcome_sustained": {"education": {"sustained": "no", "evidence": "Forged"}}})
    assert records(runtime, episode_id, "six_months") == []
    assert ready_task(runtime, episode_id, "sustained_check").assigned_user_id == people["lead"]


def test_closure_ends_a_pending_service_request_and_leaves_only_the_check(runtime, people, teams):
    from app.models import ServiceRequest
    from tests.test_service_requests import send

    episode_id = plan_with(runtime, people)
    request_id = send(runtime, people, teams, episode_id)
    assert "team_decision" in {row.name for row in ready_rows(runtime, episode_id)}
    close_with(runtime, people, episode_id, education="met", housing="not_met")
    with runtime.db.session() as session:
        assert session.get(ServiceRequest, request_id).status == "cancelled"
    assert ready_rows(runtime, episode_id) == []
    closed = episode(runtime, episode_id)
    # The only thing the workflow still waits for is the six-month timer (not the request's own deadline).
    assert closed.next_timer_at >= closed.closed_at + timedelta(days=181)
    with runtime.db.session() as session:
        episode_row = session.get(Episode, episode_id)
        episode_row.process_version
        waiting = [e.name for e in runtime.engine._load(episode_row).waiting_events()]
    assert waiting == ["Six months after closure"]
    with time_machine.travel(closed.next_timer_at + timedelta(minutes=1), tick=False):
        assert sweep_timers(runtime).woken == 1
    assert [row.name for row in ready_rows(runtime, episode_id)] == ["sustained_check"]


def test_an_episode_moved_in_keeps_its_plans_outcomes_until_its_next_plan(runtime, people):
    """An imported episode brings its plans as records, not as outcome rows of this authority."""
    from app import outcomes

    episode_id = plan_with(runtime, people)
    with runtime.db.session() as session:
        session.query(OutcomeRecord).filter(OutcomeRecord.episode_id == episode_id).delete()
    with runtime.db.session() as session:
        assert outcomes.chosen(session, episode_id) == PLAN
    with pytest.raises(FormInvalid):
        submit(runtime, people["lead"], episode_id, "review", {
            "review_date": today().isoformat(), "outcome": "close", "outcome_progress": progress(education="met")})


def test_an_episode_moved_out_while_its_step_had_failed_is_never_run_again(runtime, people):
    from types import SimpleNamespace

    from app.engine import repair
    from app.services import admin_episodes
    from app.services.transfers import apply
    from .test_admin_episodes import _errored

    episode_id = _errored(runtime, people)  # failed at "appoint the lead professional"
    with runtime.db.session() as session:  # what importing it elsewhere does to the source
        apply._close_source(session, SimpleNamespace(
            source=session.get(Episode, episode_id), importer=session.get(User, people["admin"]),
            receiving=SimpleNamespace(code="OTH"), release=SimpleNamespace(release_id="r-1")))
    moved = episode(runtime, episode_id)
    assert (moved.status, moved.step_failed) == ("closed", False), "what failed moved with it"
    with runtime.db.session() as session:
        assert admin_episodes.count(session, session.get(User, people["admin"]), "errored", stuck_after_days=14) == 0
    with pytest.raises(repair.RepairRefused):
        repair.retry(runtime.engine, episode_id, people["admin"], "Try again")
    with pytest.raises(EpisodeNotOpen):
        runtime.engine.retry(episode_id, people["admin"], reason="Forged past the page")
    assert ready_rows(runtime, episode_id) == []
