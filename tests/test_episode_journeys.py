"""Episodes driven through the CAF process, with time moved by time-machine."""
from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.jobs.sweep import sweep_timers
from app.models import Artefact, AuditEvent, Child, Episode, HumanTask, IndexEntry, OutboxMessage

from .conftest import complete, ready_task
from .journeys import CHECKLIST, CONSENT, assessment, plan, prepare, start, to_delivery, to_review, today


def episode(runtime, episode_id) -> Episode:
    with runtime.db.session() as session:
        ep = session.get(Episode, episode_id)
        ep.child, ep.authority  # load while the session is open
        return ep


def kinds(runtime, episode_id) -> list[str]:
    with runtime.db.session() as session:
        return sorted(session.scalars(select(Artefact.kind).where(Artefact.episode_id == episode_id)))


def messages(runtime, kind: str) -> list[OutboxMessage]:
    with runtime.db.session() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def ready_names(runtime, episode_id) -> list[str]:
    with runtime.db.session() as session:
        return sorted(session.scalars(select(HumanTask.name).where(HumanTask.episode_id == episode_id,
                                                                   HumanTask.status == "ready")))


def test_full_path_to_closure_with_two_review_cycles(runtime, people):
    episode_id = start(runtime, people)
    assert episode(runtime, episode_id).stage == "preparation"
    assert ready_names(runtime, episode_id) == ["pre_assessment_checklist"]
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    ep = episode(runtime, episode_id)
    assert ep.stage == "assessment"
    assert ep.next_timer_at == ep.started_at + timedelta(days=35)
    assert ready_task(runtime, episode_id, "complete_assessment").due_at == ep.started_at + timedelta(days=35)

    complete(runtime, episode_id, "complete_assessment", assessment())
    ep = episode(runtime, episode_id)
    assert ep.stage == "delivery" and ep.submitted_at is not None
    assert ep.next_timer_at is None, "submitting cancels the 35-day deadline"
    with runtime.db.session() as session:
        entry = session.scalar(select(IndexEntry).where(IndexEntry.episode_id == episode_id))
        assert entry.status == "open" and entry.contact["name"] == "Olive Origin"
        signed = session.scalar(select(Artefact).where(Artefact.kind == "assessment")).data["signature"]
        assert signed == {"assessor": "Olive Origin", "role": "Teacher", "organisation": "Test Primary",
                          "submitted_on": today().isoformat()}

    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat()})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    assert episode(runtime, episode_id).lead_professional_id == people["lead"]
    assert ready_task(runtime, episode_id, "action_plan").assigned_user_id == people["lead"]

    for cycle in (1, 2):
        plan(runtime, episode_id, review_in_days=28)
        review = ready_task(runtime, episode_id, "review")
        assert review.due_at is not None and review.due_at.date() == today() + timedelta(days=28)
        with time_machine.travel(review.due_at + timedelta(minutes=1), tick=False):
            assert sweep_timers(runtime).woken == 1
            assert len(messages(runtime, "review_due")) == cycle
            outcome = {"review_date": today().isoformat(), "outcome": "continue" if cycle == 1 else "close",
                       **({"next_review_date": (today() + timedelta(days=30)).isoformat()} if cycle == 1 else {})}
            complete(runtime, episode_id, "review", outcome)

    assert ready_names(runtime, episode_id) == ["final_summary"]
    assert episode(runtime, episode_id).stage == "closure"
    complete(runtime, episode_id, "final_summary", {"closure_reason": "needs_met", "family_views": "Thank you"})
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.stage, ep.outcome) == ("closed", "closed", "needs_met")
    assert ep.state is not None and ep.next_timer_at is None
    assert kinds(runtime, episode_id) == ["action_plan", "action_plan", "assessment", "consent_statement", "contact",
                                          "final_summary", "review", "review", "tac_meeting"]
    with runtime.db.session() as session:
        assert session.scalar(select(IndexEntry.status).where(IndexEntry.episode_id == episode_id)) == "closed"


def test_consent_refused_ends_the_episode_and_keeps_no_assessment_data(runtime, people):
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist",
             {**CHECKLIST, "healthy": {"answer": "no", "notes": "Sensitive note"}})
    complete(runtime, episode_id, "obtain_consent", {"decision": "refused", "refusal_reason": "Family declined"})
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.outcome) == ("closed", "consent_refused")
    assert kinds(runtime, episode_id) == ["consent_refusal"]
    with runtime.db.session() as session:
        submitted = list(session.scalars(select(HumanTask.submitted_data).where(HumanTask.episode_id == episode_id)))
    assert "Sensitive note" not in repr(submitted)
    # The child can have a new episode later.
    assert start(runtime, people) != episode_id


def test_35_days_alert_then_24_hours_warning_then_deletion(runtime, people):
    episode_id = prepare(runtime, people)
    started = episode(runtime, episode_id).started_at
    with time_machine.travel(started + timedelta(days=34), tick=False):
        assert sweep_timers(runtime).woken == 0
    with time_machine.travel(started + timedelta(days=35, seconds=1), tick=False):
        assert sweep_timers(runtime).woken == 1
    alerts, warnings = messages(runtime, "overdue_alert"), messages(runtime, "deletion_warning")
    assert [m.recipient for m in alerts] == ["admin@testshire.test"]
    assert [m.recipient for m in warnings] == [people["originator_email"]]
    ep = episode(runtime, episode_id)
    assert ep.status == "open" and ep.next_timer_at == started + timedelta(days=36, seconds=1)
    assert ready_task(runtime, episode_id, "complete_assessment").due_at == started + timedelta(days=35)

    with time_machine.travel(started + timedelta(days=36, seconds=2), tick=False):
        assert sweep_timers(runtime).woken == 1
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.outcome, ep.child_id, ep.state) == ("deleted", "deleted", None, None)
    with runtime.db.session() as session:
        assert session.get(Child, people["child"]) is None, "the child's personal data is gone"
        for model in (Artefact, HumanTask, IndexEntry):
            assert session.scalar(select(func.count()).select_from(model).where(model.episode_id == episode_id)) == 0
        stub = session.scalar(select(AuditEvent).where(AuditEvent.action == "episode_deleted"))
        assert stub.episode_id == episode_id and stub.detail["reason"] == "not submitted within the time limit"
        assert "Casey" not in repr(stub.detail)


def test_submitting_on_day_34_cancels_the_deletion(runtime, people):
    episode_id = prepare(runtime, people)
    started = episode(runtime, episode_id).started_at
    with time_machine.travel(started + timedelta(days=34), tick=False):
        complete(runtime, episode_id, "complete_assessment", assessment())
    with time_machine.travel(started + timedelta(days=40), tick=False):
        assert sweep_timers(runtime).woken == 0
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.stage, ep.next_timer_at) == ("open", "delivery", None)
    assert messages(runtime, "overdue_alert") == []


def test_submitting_in_the_24_hours_notice_keeps_the_episode(runtime, people):
    episode_id = prepare(runtime, people)
    started = episode(runtime, episode_id).started_at
    with time_machine.travel(started + timedelta(days=35, hours=1), tick=False):
        sweep_timers(runtime)
        complete(runtime, episode_id, "complete_assessment", assessment())
    with time_machine.travel(started + timedelta(days=37), tick=False):
        assert sweep_timers(runtime).woken == 0
    assert episode(runtime, episode_id).stage == "delivery"


def test_child_protection_concern_escalates_after_48_hours(runtime, people):
    episode_id = prepare(runtime, people, concern=True)
    ep = episode(runtime, episode_id)
    assert ep.child_protection is True
    due = ready_task(runtime, episode_id, "complete_assessment").due_at
    assert timedelta(hours=47) < due - ep.started_at <= timedelta(hours=48, minutes=1)
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        assert sweep_timers(runtime).woken == 1
    escalations = sorted(m.recipient for m in messages(runtime, "escalation_admin") + messages(runtime, "escalation_lead"))
    assert escalations == sorted(["admin@testshire.test", people["originator_email"]])
    assert messages(runtime, "deletion_warning") == []
    assert ready_task(runtime, episode_id, "complete_assessment").due_at == due  # still overdue
    # The 35-day limit still applies afterwards.
    assert episode(runtime, episode_id).next_timer_at == ep.started_at + timedelta(days=35)


def test_no_escalation_without_a_concern(runtime, people):
    episode_id = prepare(runtime, people)
    with time_machine.travel(now() + timedelta(days=3), tick=False):
        assert sweep_timers(runtime).woken == 0
    assert messages(runtime, "escalation_admin") == []


def test_legal_hold_blocks_deletion(runtime, people):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        session.get(Episode, episode_id).legal_hold = True
    started = episode(runtime, episode_id).started_at
    for moment in (timedelta(days=35, seconds=1), timedelta(days=36, seconds=2)):
        with time_machine.travel(started + moment, tick=False):
            assert sweep_timers(runtime).woken == 1
    ep = episode(runtime, episode_id)
    assert ep.status == "open" and ep.child_id == people["child"]
    assert [m.recipient for m in messages(runtime, "deletion_held")] == ["admin@testshire.test"]
    assert ready_names(runtime, episode_id) == ["complete_assessment"], "the practitioner can still submit"
    complete(runtime, episode_id, "complete_assessment", assessment())
    assert episode(runtime, episode_id).stage == "delivery"


def test_consent_withdrawn_in_delivery_closes_the_episode(runtime, people):
    episode_id = to_review(runtime, people)
    assert episode(runtime, episode_id).next_timer_at is not None  # the review reminder
    runtime.engine.send_message(episode_id, "consent_withdrawn", {"by": "Pat Parent", "reason": "Moved on"},
                                people["lead"])
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.outcome, ep.next_timer_at) == ("closed", "consent_withdrawn", None)
    assert ready_names(runtime, episode_id) == []
    with runtime.db.session() as session:
        assert session.scalar(select(IndexEntry.status).where(IndexEntry.episode_id == episode_id)) == "closed"
        withdrawal = session.scalar(select(Artefact).where(Artefact.kind == "consent_withdrawal"))
        assert withdrawal.data["by"] == "Pat Parent"
        cancelled = session.scalar(select(HumanTask.status).where(HumanTask.episode_id == episode_id,
                                                                  HumanTask.name == "review"))
        assert cancelled == "cancelled"
    assert {m.recipient for m in messages(runtime, "consent_withdrawn")} == {people["lead_email"], "admin@testshire.test"}


def test_consent_withdrawn_during_assessment_closes_it_too(runtime, people):
    episode_id = prepare(runtime, people)
    runtime.engine.send_message(episode_id, "consent_withdrawn", {"by": "Pat Parent"}, people["originator"])
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.outcome, ep.next_timer_at) == ("closed", "consent_withdrawn", None)


def test_checklist_without_full_caf_closes_with_its_decision(runtime, people):
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist", {"decision": "single_service"})
    ep = episode(runtime, episode_id)
    assert (ep.status, ep.outcome) == ("closed", "single_service")


def test_an_open_caf_elsewhere_is_found_before_consent(runtime, people):
    first = to_delivery(runtime, people)
    with runtime.db.session() as session:
        twin = Child(given_names="Casey", family_name="CHILD", date_of_birth=session.get(Child, people["child"]).date_of_birth,
                     postcode="ZZ1 1ZZ", home_authority_id=people["authority"], created_at=now())
        session.add(twin)
        session.flush()
        twin_id = twin.id
    second = runtime.engine.start_episode(child_id=twin_id, originator_id=people["lead"]).episode_id
    complete(runtime, second, "pre_assessment_checklist", CHECKLIST)
    ep = episode(runtime, second)
    assert (ep.status, ep.outcome) == ("closed", "existing_caf")
    notice = messages(runtime, "existing_caf")
    assert [m.recipient for m in notice] == [people["lead_email"]] and "Olive Origin" in notice[0].body
    assert episode(runtime, first).status == "open"
