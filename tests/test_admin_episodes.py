"""The administrator's dashboard, lists and repairs: cases made by moving the clock, each repair
fixing its case and leaving an audit row with its reason."""
from __future__ import annotations

import re

import json
from datetime import date, timedelta

import time_machine
from sqlalchemy import func, select

import handlers
from app.clock import as_utc, now
from app.engine import repair
from app.models import (AuditEvent, Child, Episode, EpisodeMember, HumanTask, Organisation,
                        OutboxMessage, User)
from app.services import admin_episodes as lists

from .conftest import VETTED, complete, other_authority, ready_task
from .journeys import CHECKLIST, CONSENT, assessment, prepare, to_delivery, today
from .web import browser, give_credentials, make_app, text_of


def _admin_client(runtime, people, secret=None):
    client = browser(make_app(runtime))
    client.sign_in("adam", secret or give_credentials(runtime, people["admin"]))
    return client


def _counts(runtime, people) -> dict:
    with runtime.db.session() as session:
        return lists.dashboard(session, session.get(User, people["admin"]), stuck_after_days=14).counts


def _listed(runtime, people, show: str) -> set[int]:
    with runtime.db.session() as session:
        rows, _ = lists.episode_list(session, session.get(User, people["admin"]),
                                     lists.read_filters({"show": show}), stuck_after_days=14)
    return {row.episode.id for row in rows}


def _police_officer(runtime, people) -> str:
    with runtime.db.session() as session:
        police = Organisation(name="Test Police", kind="police", authority_id=people["authority"])
        session.add(police)
        session.flush()
        session.add(User(username="pc", email="pc@testshire.test", full_name="Pat Constable", role="practitioner",
                         organisation_id=police.id, created_at=now(), **VETTED))
    return "pc@testshire.test"


def _errored(runtime, people) -> int:
    """Consent excludes the police; the team names a police officer as lead professional: the step
    that records the lead fails, and the episode waits for an administrator."""
    officer = _police_officer(runtime, people)
    episode_id = runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", {**CONSENT, "excluded_services": ["police"]})
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    result = complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": officer})
    assert result.status == "error" and "the family's consent excludes Test Police" in result.error
    return episode_id


def _second_child(runtime, people, family="Second") -> int:
    with runtime.db.session() as session:
        child = Child(given_names="Sam", family_name=family, date_of_birth=date(2014, 2, 2), postcode="TE3 3RD",
                      home_authority_id=people["authority"], created_at=now())
        session.add(child)
        session.flush()
        return child.id


def _audited(runtime, action: str, episode_id: int) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                        AuditEvent.episode_id == episode_id)).all()


# ---------------------------------------------------------------- counts and lists

def test_overdue_at_risk_stuck_and_pending_deletion_appear_as_time_passes(runtime, people):
    started = now()
    waiting = prepare(runtime, people)  # consent given: the 35-day limit runs
    assert _counts(runtime, people)["at_risk"] == 0 and _counts(runtime, people)["stuck"] == 0

    with time_machine.travel(started + timedelta(days=15), tick=False):
        assert _counts(runtime, people)["stuck"] == 1 and _listed(runtime, people, "stuck") == {waiting}
    with time_machine.travel(started + timedelta(days=29), tick=False):
        counts = _counts(runtime, people)
        assert counts["at_risk"] == 1 and _listed(runtime, people, "at_risk") == {waiting}
        assert counts["overdue"] == 0
    with time_machine.travel(started + timedelta(days=35, seconds=5), tick=False):
        runtime.engine.wake(waiting)
        counts = _counts(runtime, people)
        assert counts["overdue"] == 1 and _listed(runtime, people, "overdue") == {waiting}
        assert counts["pending_deletion"] == 1 and _listed(runtime, people, "pending_deletion") == {waiting}
        assert counts["at_risk"] == 0, "past the limit it is overdue, no longer at risk"


def test_a_failed_step_is_counted_listed_with_its_message_and_retried_with_corrected_data(runtime, people):
    episode_id = _errored(runtime, people)
    assert _counts(runtime, people)["errored"] == 1
    client = _admin_client(runtime, people)
    listing = client.get("/admin/episodes?show=errored")
    assert "cannot be the lead professional: the family's consent excludes Test Police" in text_of(listing)

    page = client.get(f"/admin/episodes/{episode_id}")
    assert page.status_code == 200 and "Record the lead professional" in text_of(page)
    with runtime.db.session() as session:
        data = repair.task_data(runtime.engine, session.get(Episode, episode_id))
    failed = next(t for t in data if t["state"] == "failed")
    corrected = {**failed["data"]["appoint_lead_professional"], "lead_professional_email": people["lead_email"]}

    no_reason = client.post(f"/admin/episodes/{episode_id}/repair",
                            {"action": "retry", "data.appoint_lead_professional": json.dumps(corrected)},
                            token_from=f"/admin/episodes/{episode_id}")
    assert no_reason.status_code == 400 and "Enter the reason" in text_of(no_reason)
    assert _episode(runtime, episode_id).status == "error", "nothing changed"
    bad_json = client.post(f"/admin/episodes/{episode_id}/repair",
                           {"action": "retry", "reason": "x", "data.appoint_lead_professional": "{not json"},
                           token_from=f"/admin/episodes/{episode_id}")
    assert bad_json.status_code == 400 and "not valid JSON" in text_of(bad_json)

    done = client.post(f"/admin/episodes/{episode_id}/repair",
                       {"action": "retry", "reason": "The team chose Leah instead; police are excluded",
                        "data.appoint_lead_professional": json.dumps(corrected)},
                       token_from=f"/admin/episodes/{episode_id}")
    assert done.status_code == 302
    episode = _episode(runtime, episode_id)
    assert (episode.status, episode.lead_professional_id) == ("open", people["lead"])
    assert _counts(runtime, people)["errored"] == 0
    (row,) = _audited(runtime, "step_retried", episode_id)
    assert row.detail["reason"] == "The team chose Leah instead; police are excluded"
    assert row.detail["corrected"] == ["appoint_lead_professional"]
    again = client.post(f"/admin/episodes/{episode_id}/repair", {"action": "retry", "reason": "again"},
                        token_from=f"/admin/episodes/{episode_id}")
    assert again.status_code == 400 and "Only an episode whose automatic step failed" in text_of(again)


def _episode(runtime, episode_id) -> Episode:
    with runtime.db.session() as session:
        return session.get(Episode, episode_id)


# ---------------------------------------------------------------- each repair

def _repair(client, episode_id, **form):
    return client.post(f"/admin/episodes/{episode_id}/repair", form, token_from=f"/admin/episodes/{episode_id}")


def test_reassign_extend_suspend_resume_and_legal_hold(runtime, people):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        session.add(EpisodeMember(episode_id=episode_id, user_id=people["lead"], role="tac_member", added_at=now()))
    client = _admin_client(runtime, people)
    task = ready_task(runtime, episode_id, "complete_assessment")

    outsider = _repair(client, episode_id, action="reassign", task=str(task.id), user=str(people["admin"]),
                       reason="cover")
    assert outsider.status_code == 400 and "only go to a member" in text_of(outsider)
    assert _repair(client, episode_id, action="reassign", task=str(task.id), user=str(people["lead"]),
                   reason="Olive is on leave").status_code == 302
    assert ready_task(runtime, episode_id, "complete_assessment").assigned_user_id == people["lead"]

    with runtime.db.session() as session:
        (timer,) = [t for t in repair.waiting_timers(runtime.engine, session.get(Episode, episode_id))
                    if t.name == "35-day limit"]
    past = _repair(client, episode_id, action="extend", timer=timer.task_id, reason="x",
                   **{"new_due-day": "1", "new_due-month": "1", "new_due-year": "2020"})
    assert past.status_code == 400 and "must be in the future" in text_of(past)
    later = as_utc(timer.due) + timedelta(days=14)
    assert _repair(client, episode_id, action="extend", timer=timer.task_id, reason="Family in hospital",
                   new_due_time="09:00", **{"new_due-day": str(later.day), "new_due-month": str(later.month),
                                            "new_due-year": str(later.year)}).status_code == 302
    moved = _episode(runtime, episode_id).next_timer_at
    assert as_utc(moved).date() == later.date()
    assert as_utc(ready_task(runtime, episode_id, "complete_assessment").due_at).date() == later.date()
    with time_machine.travel(timer.due + timedelta(hours=1), tick=False):
        assert runtime.engine.wake(episode_id) is None, "the old time limit no longer fires"
        assert ready_task(runtime, episode_id, "complete_assessment").assigned_user_id == people["lead"], \
            "a reassigned task stays with its new holder"

    assert _repair(client, episode_id, action="suspend", reason="Court proceedings").status_code == 302
    assert _episode(runtime, episode_id).status == "suspended"
    with time_machine.travel(as_utc(moved) + timedelta(hours=1), tick=False):
        assert runtime.engine.wake(episode_id) is None, "nothing fires while suspended"
    assert _repair(client, episode_id, action="resume", reason="Proceedings over").status_code == 302
    assert _episode(runtime, episode_id).status == "open"

    assert _repair(client, episode_id, action="hold", reason="Subject access request pending").status_code == 302
    refused = _repair(client, episode_id, action="delete", confirm="yes", reason="created without consent")
    assert refused.status_code == 400 and "legal hold" in text_of(refused)
    assert _repair(client, episode_id, action="lift_hold", reason="Request answered").status_code == 302
    for action in ("repair_reassign", "repair_extend_deadline", "repair_suspend", "repair_resume",
                   "legal_hold_placed", "legal_hold_lifted"):
        (row,) = _audited(runtime, action, episode_id)
        assert row.detail["reason"] and row.actor_id == people["admin"], action


def test_delete_now_and_terminate(runtime, people):
    doomed = prepare(runtime, people)
    closing = runtime.engine.start_episode(child_id=_second_child(runtime, people),
                                           originator_id=people["originator"]).episode_id
    client = _admin_client(runtime, people)
    unconfirmed = _repair(client, doomed, action="delete", reason="Created without consent")
    assert unconfirmed.status_code == 400 and _episode(runtime, doomed).status == "open"
    assert _repair(client, doomed, action="delete", confirm="yes", reason="Created without consent").status_code == 302
    gone = _episode(runtime, doomed)
    assert (gone.status, gone.child_id) == ("deleted", None)
    assert _audited(runtime, "repair_delete", doomed)[0].detail["reason"] == "Created without consent"

    no_outcome = _repair(client, closing, action="terminate", confirm="yes", reason="Family moved")
    assert no_outcome.status_code == 400 and "Choose the closure reason" in text_of(no_outcome)
    assert _repair(client, closing, action="terminate", outcome="moved_away", confirm="yes",
                   reason="Family moved").status_code == 302
    ended = _episode(runtime, closing)
    assert (ended.status, ended.outcome) == ("closed", "moved_away")
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.episode_id == closing, HumanTask.status == "ready")) == 0


def test_undeliverable_messages_are_sent_again_or_discarded(runtime, people):
    from app.outbox import queue_email

    episode_id = to_delivery(runtime, people)
    with runtime.db.session() as session:
        messages = [queue_email(session, kind="review_reminder", recipient=f"person{i}@testshire.test",
                                subject="Review due", body="A review is due.", key=f"test-{i}",
                                episode_id=episode_id) for i in range(2)]
        for message in messages:
            message.status, message.attempts, message.last_error = "failed", 5, "mailbox full"
        first, second = messages[0].id, messages[1].id
    client = _admin_client(runtime, people)
    no_reason = client.post(f"/admin/messages/{first}", {"action": "retry"}, token_from=f"/admin/episodes/{episode_id}")
    assert no_reason.status_code == 400
    assert client.post(f"/admin/messages/{first}", {"action": "retry", "reason": "Mail server back"},
                       token_from=f"/admin/episodes/{episode_id}").status_code == 302
    assert client.post(f"/admin/messages/{second}", {"action": "discard", "reason": "Wrong address"},
                       token_from=f"/admin/episodes/{episode_id}").status_code == 302
    with runtime.db.session() as session:
        assert session.get(OutboxMessage, first).status in ("pending", "sent")
        assert session.get(OutboxMessage, second).status == "discarded"
    assert _audited(runtime, "message_retry", episode_id)[0].detail["reason"] == "Mail server back"
    assert _audited(runtime, "message_discard", episode_id)[0].detail["reason"] == "Wrong address"


def test_another_authoritys_administrator_can_do_nothing(runtime, people):
    episode_id = _errored(runtime, people)
    other = other_authority(runtime)
    outsider_id = other["otto"]
    client = browser(make_app(runtime))
    client.sign_in("otto", give_credentials(runtime, outsider_id))
    assert client.get(f"/admin/episodes/{episode_id}").status_code == 404
    assert client.post(f"/admin/episodes/{episode_id}/repair", {"action": "retry", "reason": "x"},
                       token_from="/admin/").status_code == 404
    assert episode_id not in _listed(runtime, {"admin": outsider_id}, "errored")
    assert _episode(runtime, episode_id).status == "error"


# ---------------------------------------------------------------- bulk

def test_bulk_retry_previews_then_fixes_a_hundred_errored_episodes(runtime, people, monkeypatch):
    real = handlers.OPERATORS["index/notify"]
    monkeypatch.setitem(handlers.OPERATORS, "index/notify",
                        lambda ctx, **params: (_ for _ in ()).throw(ConnectionError("index unavailable")))
    with runtime.db.session() as session:
        session.add_all([Child(given_names=f"Child {i}", family_name="Bulk", date_of_birth=date(2015, 1, 1),
                               home_authority_id=people["authority"], created_at=now()) for i in range(100)])
        session.flush()
        children = session.scalars(select(Child.id).where(Child.family_name == "Bulk")).all()
    for child_id in children:
        episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
        complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
        complete(runtime, episode_id, "obtain_consent", CONSENT)
        complete(runtime, episode_id, "complete_assessment", assessment())
    assert _counts(runtime, people)["errored"] == 100
    monkeypatch.setitem(handlers.OPERATORS, "index/notify", real)

    client = _admin_client(runtime, people)
    preview = client.get("/admin/episodes/bulk?show=errored&action=retry")
    assert preview.status_code == 200 and "100 episodes will change" in text_of(preview)
    assert _counts(runtime, people)["errored"] == 100, "a preview changes nothing"
    shown = listed(client, "show=errored&action=retry")
    assert len(shown) == 100
    no_reason = client.post("/admin/episodes/bulk", {"show": "errored", "action": "retry", "confirm": "yes",
                                                     "listed": shown})
    assert no_reason.status_code == 400 and _counts(runtime, people)["errored"] == 100
    done = client.post("/admin/episodes/bulk", {"show": "errored", "action": "retry", "confirm": "yes",
                                                "reason": "The index endpoint is back", "listed": shown})
    assert done.status_code == 302
    assert _counts(runtime, people)["errored"] == 0
    with runtime.db.session() as session:
        (bulk_row,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "bulk_retry")).all()
        assert bulk_row.detail["done"] == 100 and bulk_row.detail["reason"] == "The index endpoint is back"
    nothing = client.post("/admin/episodes/bulk", {"show": "errored", "action": "retry", "confirm": "yes",
                                                   "reason": "again"})
    assert nothing.status_code == 400 and "nothing to retry" in text_of(nothing)


def test_bulk_reassign_moves_only_what_can_move(runtime, people):
    first = prepare(runtime, people)
    second = prepare_for(runtime, people, _second_child(runtime, people))
    with runtime.db.session() as session:
        session.add(EpisodeMember(episode_id=first, user_id=people["lead"], role="tac_member", added_at=now()))
    client = _admin_client(runtime, people)
    form = {"show": "open", "action": "reassign", "from_user": str(people["originator"]),
            "to_user": str(people["lead"])}
    preview = client.post("/admin/episodes/bulk", {**form, "confirm": "no"})
    page = text_of(preview)
    assert "1 episodes will change" in page and "is not a member of this episode" in page
    shown = listed(client, "&".join(f"{k}={v}" for k, v in form.items()))
    assert client.post("/admin/episodes/bulk", {**form, "confirm": "yes", "reason": "Olive has left",
                                                "listed": shown}).status_code == 302
    assert ready_task(runtime, first, "complete_assessment").assigned_user_id == people["lead"]
    assert ready_task(runtime, second, "complete_assessment").assigned_user_id == people["originator"]


def listed(client, query: str) -> list[str]:
    """What the bulk action's "Are you sure?" page lists and posts back (the action is held to it)."""
    page = client.get(f"/admin/episodes/bulk/confirm?{query}").get_data(as_text=True)
    return re.findall(r'name="listed" value="([^"]+)"', page)


def prepare_for(runtime, people, child_id: int) -> int:
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    return episode_id


def test_the_dashboard_and_list_pages(runtime, people):
    episode_id = _errored(runtime, people)
    client = _admin_client(runtime, people)
    board = client.get("/admin/")
    assert board.status_code == 200
    assert "1 errored" in text_of(board)
    bad = client.get("/admin/episodes?show=open&started_from=31-02-2026")
    assert bad.status_code == 400 and "Enter a date like 2026-03-31" in text_of(bad)
    assert 'value="31-02-2026"' in bad.get_data(as_text=True)
    listed = client.get("/admin/episodes?show=open&stage=delivery&sort=started")
    assert listed.status_code == 200 and f"TST-{episode_id:06d}" in text_of(listed)
