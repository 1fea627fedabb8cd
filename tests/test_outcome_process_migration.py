"""Episodes on the process version before headline outcomes carry on: migrated while in delivery,
their next plan chooses outcomes and a closure with outcomes met waits for the six-month check."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import time_machine

from app.engine.library import Bundle, deploy
from app.jobs.sweep import sweep_timers
from app.services import process_migrations as migrations

from .conftest import complete, processes_copy, ready_task
from .journeys import to_delivery, today
from .test_outcomes import episode, progress, records, submit
from .test_process_migration import owner

BEFORE = Path(__file__).parent / "process_versions"


def deployed(runtime, directory: Path, note: str) -> int:
    with runtime.db.session() as session:
        version, created = deploy(session, Bundle.from_directory(directory), change_note=note)
        assert created
        return version.version


def before_outcomes(tmp_path: Path) -> Path:
    """The shipped model as it was before outcomes: no six-month check, a plan without outcomes."""
    directory = processes_copy(tmp_path / "before")
    shutil.copy(BEFORE / "caf_episode_before_outcomes.bpmn", directory / "caf_episode.bpmn")
    for part in ("schema", "uischema"):
        shutil.copy(BEFORE / f"action_plan_before_outcomes.{part}.json",
                    directory / "forms" / f"action_plan.{part}.json")
    return directory


def with_outcomes(tmp_path: Path) -> Path:
    """The shipped model again, as a newer version (its text differs by a word of documentation)."""
    directory = processes_copy(tmp_path / "after")
    path = directory / "caf_episode.bpmn"
    text = path.read_text()
    assert "One trip through the Common Assessment Framework" in text
    path.write_text(text.replace("One trip through the Common Assessment Framework",
                                 "One journey through the Common Assessment Framework"))
    return directory


def test_an_episode_in_review_on_the_older_version_migrates_and_follows_outcomes_up(runtime, people, tmp_path):
    owner_id = owner(runtime, people)
    older = deployed(runtime, before_outcomes(tmp_path), "before outcomes")
    # The plan of the older version asks for no outcomes.
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat()})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    complete(runtime, episode_id, "action_plan", {"next_review_date": (today() + timedelta(days=30)).isoformat()})
    assert records(runtime, episode_id) == []
    newer = deployed(runtime, with_outcomes(tmp_path), "headline outcomes")

    plan = migrations.dry_run(runtime, "caf_episode", older, newer)
    assert [report.episode_id for report in plan.episodes] == [episode_id]
    result = migrations.run(runtime, "caf_episode", older, newer, episode_ids=[episode_id], note="Outcomes",
                            by_user_id=owner_id)
    assert result.migrated == [episode_id]

    # No outcomes were chosen, so the review asks for none; the next plan chooses them.
    submit(runtime, people["lead"], episode_id, "review", {
        "review_date": today().isoformat(), "outcome": "continue",
        "next_review_date": (today() + timedelta(days=30)).isoformat()})
    complete(runtime, episode_id, "action_plan", {
        "headline_outcomes": ["family_relationships"],
        "next_review_date": (today() + timedelta(days=30)).isoformat()})
    submit(runtime, people["lead"], episode_id, "review", {
        "review_date": today().isoformat(), "outcome": "close",
        "outcome_progress": progress(family_relationships="met")})
    submit(runtime, people["lead"], episode_id, "final_summary", {
        "closure_reason": "needs_met", "outcome_progress": progress(family_relationships="met")})
    closed = episode(runtime, episode_id)
    assert closed.status == "closed" and closed.next_timer_at is not None
    with time_machine.travel(closed.next_timer_at + timedelta(minutes=1), tick=False):
        assert sweep_timers(runtime).woken == 1
        assert ready_task(runtime, episode_id, "sustained_check").assigned_user_id == people["lead"]
