"""Headline outcomes through the pages: the review shows the outcomes the plan chose, refuses bad
progress with an error summary and keeps what was typed; the six-month check is offered to the lead
professional alone, and a closed episode's page offers nothing else."""
from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from app.jobs.sweep import sweep_timers
from app.models import AuditEvent, OutcomeRecord

from .conftest import ready_task
from .journeys import today
from .test_outcomes import close_with, episode, plan_with, records
from .web import browser, text_of


def signed_in(web, who: str, username: str):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def review_form(**extra) -> dict:
    day = today()
    return {"action": "submit", "review_date.day": str(day.day), "review_date.month": str(day.month),
            "review_date.year": str(day.year), "outcome": "close",
            "what_has_changed": "Casey now goes to the morning club", **extra}


def test_the_review_page_asks_for_the_chosen_outcomes_and_refuses_bad_progress(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = plan_with(runtime, people)
    task = ready_task(runtime, episode_id, "review")
    leah = signed_in(web, "lead", "leah")
    page = leah.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'name="outcome_progress.education.progress"' in page
    assert 'name="outcome_progress.housing.progress"' in page
    assert 'name="outcome_progress.crime.progress"' not in page, "only the outcomes the plan chose"

    refused = leah.post(f"/tasks/{task.id}", review_form(**{"outcome_progress.education.progress": "met"}))
    assert refused.status_code == 400
    shown = text_of(refused)
    assert "There is a problem" in shown
    assert "Enter the evidence that this outcome is met" in shown
    assert "Select the progress towards “Secure housing”" in shown
    assert "Casey now goes to the morning club" in refused.get_data(as_text=True), "what was typed is kept"
    assert ready_task(runtime, episode_id, "review").id == task.id
    assert records(runtime, episode_id, "review") == []

    done = leah.post(f"/tasks/{task.id}", review_form(**{
        "outcome_progress.education.progress": "met", "outcome_progress.education.evidence": "96% attendance",
        "outcome_progress.housing.progress": "not_started"}))
    assert done.status_code == 302
    assert records(runtime, episode_id, "review") == [("review", "education", "met"),
                                                      ("review", "housing", "not_started")]


def test_the_six_month_check_is_offered_to_the_lead_professional_alone(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = plan_with(runtime, people)
    close_with(runtime, people, episode_id, education="met", housing="not_met")
    leah = signed_in(web, "lead", "leah")
    closed_page = text_of(leah.get(f"/episodes/{episode_id}"))
    assert "Check the outcomes were sustained" not in closed_page
    with time_machine.travel(episode(runtime, episode_id).next_timer_at + timedelta(minutes=1), tick=False):
        sweep_timers(runtime)
        task = ready_task(runtime, episode_id, "sustained_check")
        leah, olive = signed_in(web, "lead", "leah"), signed_in(web, "originator", "olive")  # six months on
        assert "Check the outcomes were sustained" in text_of(leah.get("/"))
        page = leah.get(f"/tasks/{task.id}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'name="outcome_sustained.education.sustained"' in html
        assert 'name="outcome_sustained.housing.sustained"' not in html, "housing was not met at closure"

        forged = {"action": "submit", "checked_on.day": "1", "checked_on.month": "1", "checked_on.year": "2027",
                  "outcome_sustained.education.sustained": "no", "outcome_sustained.education.evidence": "Forged"}
        assert olive.get(f"/tasks/{task.id}").status_code == 404
        assert olive.post(f"/tasks/{task.id}", forged).status_code in (302, 404)
        with runtime.db.session() as session:
            assert session.scalar(select(func.count()).select_from(OutcomeRecord).where(
                OutcomeRecord.stage == "six_months")) == 0
            assert session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "access_denied")) >= 2
        assert ready_task(runtime, episode_id, "sustained_check").id == task.id

        day = today()
        done = leah.post(f"/tasks/{task.id}", {
            "action": "submit", "checked_on.day": str(day.day), "checked_on.month": str(day.month),
            "checked_on.year": str(day.year), "outcome_sustained.education.sustained": "yes",
            "outcome_sustained.education.evidence": "Still attending every day"})
        assert done.status_code == 302
    assert records(runtime, episode_id, "six_months") == [("six_months", "education", "sustained")]


def test_a_plan_agreed_again_starts_from_the_outcomes_chosen_before(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = plan_with(runtime, people)
    leah = signed_in(web, "lead", "leah")
    task = ready_task(runtime, episode_id, "review")
    assert leah.post(f"/tasks/{task.id}", review_form(**{
        "outcome": "continue", "next_review_date.day": "1", "next_review_date.month": "1",
        "next_review_date.year": str(today().year + 1),
        "outcome_progress.education.progress": "some_progress",
        "outcome_progress.housing.progress": "not_started"})).status_code == 302
    page = leah.get(f"/tasks/{ready_task(runtime, episode_id, 'action_plan').id}").get_data(as_text=True)
    checked = [line for line in page.split("<input") if 'name="headline_outcomes"' in line and "checked" in line]
    assert len(checked) == 2 and any('value="education"' in line for line in checked)
