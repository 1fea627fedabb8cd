"""Deadline alerts: the 35-day and 48-hour deadlines raise an alert in the administrator's task list,
with the originator's contact, until the administrator records the outcome of the call."""
from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.jobs.sweep import sweep_timers
from app.models import AdminAlert, AuditEvent, Child, Episode
from app.web.deadlines import from_now
from app.uk_time import date_time
from tests.conftest import other_authority
from tests.journeys import prepare
from tests.web import browser, give_credentials, text_of


def signed_in(web, who: str = "admin", username: str = "adam"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def other_authority_admin(web) -> tuple[str, str]:
    """An administrator of another authority: (username, authenticator secret)."""
    return "otto", give_credentials(web["runtime"], other_authority(web["runtime"])["otto"])


def started_at(runtime, episode_id: int):
    with runtime.db.session() as session:
        return session.get(Episode, episode_id).started_at


def alerts(runtime) -> list[AdminAlert]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AdminAlert).order_by(AdminAlert.id)))


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def alert_section(page: str) -> str:
    """The alerts part of the task list page (before the tasks table)."""
    start = page.index("Deadline alerts")
    return page[start:page.index("Tasks", start)]


# ---------------------------------------------------------------- the engine raises them

def test_the_35_day_deadline_writes_one_alert_in_the_same_step(runtime, people):
    episode_id = prepare(runtime, people)
    due = started_at(runtime, episode_id) + timedelta(days=35, seconds=1)
    with time_machine.travel(due, tick=False):
        assert sweep_timers(runtime).woken == 1
    [alert] = alerts(runtime)
    assert (alert.episode_id, alert.authority_id, alert.kind) == (episode_id, people["authority"], "assessment_overdue")
    assert alert.raised_at == due and alert.resolved_at is None and "legal hold" in alert.message
    assert [e.detail for e in audited(runtime, "deadline_missed")] == [{"deadline": "assessment"}]
    with time_machine.travel(due + timedelta(hours=1), tick=False):
        assert sweep_timers(runtime).woken == 0
    assert len(alerts(runtime)) == 1


def test_the_48_hour_escalation_writes_a_child_protection_alert(runtime, people):
    episode_id = prepare(runtime, people, concern=True)
    with time_machine.travel(started_at(runtime, episode_id) + timedelta(hours=48, minutes=2), tick=False):
        assert sweep_timers(runtime).woken == 1
    [alert] = alerts(runtime)
    assert (alert.episode_id, alert.kind) == (episode_id, "child_protection_overdue")
    assert "48 hours" in alert.message


def test_no_alert_before_the_deadline(runtime, people):
    episode_id = prepare(runtime, people)
    with time_machine.travel(started_at(runtime, episode_id) + timedelta(days=34), tick=False):
        sweep_timers(runtime)
    assert alerts(runtime) == []


# ---------------------------------------------------------------- the administrator's task list

def test_the_alert_shows_in_the_administrators_task_list_with_the_originators_contact(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    started = started_at(runtime, episode_id)
    with time_machine.travel(started + timedelta(days=35, minutes=1), tick=False):
        sweep_timers(runtime)
        admin = signed_in(web)  # once: with the clock stopped, each code works once
        page = text_of(admin.get("/"))
        section = alert_section(page)
        assert "TST-%06d" % episode_id in section
        assert "Assessment not submitted within 35 days" in section
        assert date_time(started + timedelta(days=35, minutes=1)) in section, "when it was missed"
        # The 24 hours' notice runs from the warning: the deletion time comes from the episode's next timer.
        assert f"Will be deleted {from_now(started + timedelta(days=36, minutes=1))}" in section
        assert "Will be deleted in 24 hours, on " in section
        for contact in ("Olive Origin", "Test Primary", "0100 000 111", "olive@testshire.test"):
            assert contact in section
        html = admin.get("/").get_data(as_text=True)
        assert f'href="/episodes/{episode_id}"' in html and 'href="tel:0100000111"' in html
        practitioner = text_of(signed_in(web, "originator", "olive").get("/"))
        assert "Deadline alerts" not in practitioner, "only administrators see alerts"


def test_a_child_protection_alert_comes_first_and_is_flagged(web):
    runtime, people = web["runtime"], web["people"]
    plain = prepare(runtime, people)
    with runtime.db.session() as session:
        # An older 35-day alert on another episode, so the order is not just by time.
        session.add(AdminAlert(episode_id=plain, authority_id=people["authority"], kind="assessment_overdue",
                               message="Not submitted", raised_at=now() - timedelta(days=1)))
        sibling = Child(given_names="Sam", family_name="Child", home_authority_id=people["authority"],
                        created_at=now())
        session.add(sibling)
        session.flush()
        sibling_id = sibling.id
    urgent = prepare(runtime, {**people, "child": sibling_id}, concern=True)
    with time_machine.travel(started_at(runtime, urgent) + timedelta(hours=49), tick=False):
        sweep_timers(runtime)
        section = alert_section(text_of(signed_in(web).get("/")))
    assert section.index("TST-%06d" % urgent) < section.index("TST-%06d" % plain)
    assert "Child-protection assessment not submitted within 48 hours" in section
    assert "Child protection" in section


def test_recording_the_call_resolves_the_alert_and_it_leaves_the_list(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    with time_machine.travel(started_at(runtime, episode_id) + timedelta(days=35, minutes=1), tick=False):
        sweep_timers(runtime)
        [alert] = alerts(runtime)
        admin = signed_in(web)
        empty = admin.post(f"/admin/alerts/{alert.id}/resolve", {"outcome": "   "}, token_from="/")
        assert empty.status_code == 400
        html = empty.get_data(as_text=True)
        assert "<title>Error: " in html
        assert f'href="#outcome-{alert.id}"' in html and f'id="outcome-{alert.id}"' in html
        assert "Enter the outcome of your call to the originator" in text_of(empty)
        long = "Spoke to Olive. " * 200
        too_long = admin.post(f"/admin/alerts/{alert.id}/resolve", {"outcome": long}, token_from="/")
        assert too_long.status_code == 400 and "Spoke to Olive." in too_long.get_data(as_text=True), \
            "what was typed is kept"
        assert alerts(runtime)[0].resolved_at is None

        done = admin.post(f"/admin/alerts/{alert.id}/resolve",
                          {"outcome": "Spoke to Olive: submitting today."}, token_from="/")
        assert done.status_code == 302 and done.location.endswith("/")
        assert "Deadline alerts" not in text_of(admin.get("/"))
        [resolved] = alerts(runtime)
        assert resolved.resolution == "Spoke to Olive: submitting today."
        assert resolved.resolved_by_id == people["admin"] and resolved.resolved_at is not None
        [event] = audited(runtime, "alert_resolved")
        assert (event.actor_id, event.episode_id, event.detail["alert_id"]) == (people["admin"], episode_id, alert.id)

        again = admin.post(f"/admin/alerts/{alert.id}/resolve", {"outcome": "Second go"}, token_from="/")
        assert again.status_code == 302
        assert alerts(runtime)[0].resolution == "Spoke to Olive: submitting today.", "resolved once"


def test_the_alert_says_when_the_episode_was_deleted(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    started = started_at(runtime, episode_id)
    with time_machine.travel(started + timedelta(days=35, minutes=1), tick=False):
        sweep_timers(runtime)
    with time_machine.travel(started + timedelta(days=36, minutes=2), tick=False):
        sweep_timers(runtime)
        html = signed_in(web).get("/").get_data(as_text=True)
    assert f"Deleted {date_time(started + timedelta(days=36, minutes=2))}" in text_of_html(html)
    assert f'href="/episodes/{episode_id}"' not in html, "no link to a deleted episode"


def text_of_html(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_another_authoritys_alert_answers_404_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    with time_machine.travel(started_at(runtime, episode_id) + timedelta(days=35, minutes=1), tick=False):
        sweep_timers(runtime)
        [alert] = alerts(runtime)
        username, secret = other_authority_admin(web)
        other = browser(web["app"])
        other.sign_in(username, secret)
        assert "Deadline alerts" not in text_of(other.get("/"))
        refused = other.post(f"/admin/alerts/{alert.id}/resolve", {"outcome": "Not mine"}, token_from="/")
        assert refused.status_code == 404
        missing = other.post("/admin/alerts/999999/resolve", {"outcome": "Nothing"}, token_from="/")
        assert missing.status_code == 404
        practitioner = signed_in(web, "originator", "olive")
        assert practitioner.post(f"/admin/alerts/{alert.id}/resolve", {"outcome": "x"},
                                 token_from="/").status_code == 403
    assert alerts(runtime)[0].resolved_at is None
    denied = [e.detail["asked_for"] for e in audited(runtime, "access_denied")]
    assert f"alert {alert.id}" in denied and "alert 999999" in denied
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "alert_resolved")) == 0
