"""Bad input, concurrent completion and failed handlers: clear errors, nothing lost."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

import handlers
from app.engine.errors import (EpisodeNotFound, EpisodeNotOpen, FormInvalid, NothingToRetry, NotWaitingForMessage,
                               OpenEpisodeExists, TaskAlreadyDone, TaskNotFound, TaskNotReady)
from app.models import Artefact, Episode, HumanTask, IndexEntry

from .conftest import complete, ready_task
from .journeys import CHECKLIST, assessment, prepare, start


def snapshot(runtime, episode_id):
    with runtime.db.session() as session:
        ep = session.get(Episode, episode_id)
        return ep.lock_version, ep.state, ep.status


def test_form_data_that_fails_its_schema_changes_nothing(runtime, people):
    episode_id = start(runtime, people)
    before = snapshot(runtime, episode_id)
    task = ready_task(runtime, episode_id, "pre_assessment_checklist")
    with pytest.raises(FormInvalid) as raised:
        runtime.engine.complete_task(episode_id, task.id, {"decision": "maybe", "healthy": {"answer": "no"}},
                                     people["originator"])
    assert raised.value.errors == [{"field": "decision", "message": raised.value.errors[0]["message"]}]
    assert "maybe" in raised.value.errors[0]["message"]
    with pytest.raises(FormInvalid) as raised:
        runtime.engine.complete_task(episode_id, task.id, {}, people["originator"])
    assert raised.value.errors == [{"field": "decision", "message": "Enter this information"}]
    assert snapshot(runtime, episode_id) == before
    assert ready_task(runtime, episode_id, "pre_assessment_checklist").status == "ready"


def test_nested_required_fields_and_unknown_users_are_named(runtime, people):
    episode_id = prepare(runtime, people)
    task = ready_task(runtime, episode_id, "complete_assessment")
    with pytest.raises(FormInvalid) as raised:
        runtime.engine.complete_task(episode_id, task.id, {
            "section_a_administration": {"date_started": "2026-02-30"},
            "section_b_child": {"given_names": "Casey", "family_name": "", "date_of_birth": "2015-05-01"}},
            people["originator"])
    fields = {e["field"]: e["message"] for e in raised.value.errors}
    assert fields == {"section_a_administration.date_started": "Enter a real date in the form YYYY-MM-DD",
                      "section_b_child.family_name": "Enter this information"}


def test_blank_answers_are_allowed_and_not_stored(runtime, people):
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist",
             {"decision": "full_caf", "who_will_assess": "  ", "healthy": {"answer": "yes", "notes": ""}})
    with runtime.db.session() as session:
        row = session.scalar(select(HumanTask).where(HumanTask.name == "pre_assessment_checklist"))
        assert row.submitted_data == {"decision": "full_caf", "healthy": {"answer": "yes"}}


def test_unknown_task_task_not_ready_and_unknown_episode(runtime, people):
    episode_id = start(runtime, people)
    with pytest.raises(TaskNotFound):
        runtime.engine.complete_task(episode_id, 999999, {}, people["originator"])
    with pytest.raises(EpisodeNotFound):
        runtime.engine.complete_task(999999, 1, {}, people["originator"])
    first = ready_task(runtime, episode_id, "pre_assessment_checklist")
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    with pytest.raises(TaskAlreadyDone, match="already completed by Olive Origin"):
        runtime.engine.complete_task(episode_id, first.id, CHECKLIST, people["originator"])
    with pytest.raises(NotWaitingForMessage):
        runtime.engine.send_message(episode_id, "no_such_message", {}, people["originator"])


def test_a_completed_episode_takes_no_more_steps(runtime, people):
    episode_id = start(runtime, people)
    task = ready_task(runtime, episode_id, "pre_assessment_checklist")
    complete(runtime, episode_id, "pre_assessment_checklist", {"decision": "no_further_action"})
    with pytest.raises(EpisodeNotOpen, match="closed"):
        runtime.engine.complete_task(episode_id, task.id, CHECKLIST, people["originator"])
    with pytest.raises(EpisodeNotOpen):
        runtime.engine.send_message(episode_id, "consent_withdrawn", {}, None)


def test_a_cancelled_task_is_not_ready(runtime, people):
    episode_id = prepare(runtime, people)
    task = ready_task(runtime, episode_id, "complete_assessment")
    runtime.engine.send_message(episode_id, "consent_withdrawn", {"by": "parent"}, None)
    with pytest.raises(EpisodeNotOpen):
        runtime.engine.complete_task(episode_id, task.id, assessment(), people["originator"])
    with runtime.db.session() as session:
        assert session.get(HumanTask, task.id).status == "cancelled"


def test_a_second_open_episode_for_the_same_child_is_refused(runtime, people):
    episode_id = start(runtime, people)
    with pytest.raises(OpenEpisodeExists) as raised:
        start(runtime, people)
    assert raised.value.episode_id == episode_id
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Episode)) == 1


def test_the_database_itself_allows_one_open_episode_per_child(runtime, people):
    start(runtime, people)
    from sqlalchemy.exc import IntegrityError

    from app.clock import now

    with pytest.raises(IntegrityError):
        with runtime.db.session() as session:
            first = session.scalar(select(Episode))
            session.add(Episode(child_id=first.child_id, authority_id=first.authority_id,
                                process_version_id=first.process_version_id, status="open", stage="preparation",
                                originator_id=first.originator_id, started_at=now(), updated_at=now()))
            session.flush()


def test_concurrent_completion_gives_one_success_and_one_already_done(runtime, people):
    episode_id = start(runtime, people)
    task = ready_task(runtime, episode_id, "pre_assessment_checklist")
    barrier, outcomes = threading.Barrier(2), []

    def attempt():
        barrier.wait()
        try:
            runtime.engine.complete_task(episode_id, task.id, CHECKLIST, people["originator"])
            outcomes.append("done")
        except TaskAlreadyDone as exc:
            outcomes.append(f"already: {exc}")

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split(":")[0] for o in outcomes) == ["already", "done"]
    assert ready_task(runtime, episode_id, "obtain_consent")


def test_a_failing_handler_leaves_the_episode_recoverable(runtime, people, monkeypatch):
    episode_id = prepare(runtime, people)
    real = handlers.OPERATORS["index/notify"]

    def unavailable(ctx, **params):
        ctx.add_artefact("half_written", {"x": 1})  # must be rolled back with the handler's savepoint
        raise ConnectionError("index unavailable")

    monkeypatch.setitem(handlers.OPERATORS, "index/notify", unavailable)
    result = complete(runtime, episode_id, "complete_assessment", assessment())
    assert result.status == "error" and "index unavailable" in result.error
    with runtime.db.session() as session:
        ep = session.get(Episode, episode_id)
        assert (ep.status, ep.error_task) == ("error", "Tell the national index")
        assert session.scalar(select(func.count()).select_from(IndexEntry)) == 0
        kinds = set(session.scalars(select(Artefact.kind).where(Artefact.episode_id == episode_id)))
        assert kinds == {"consent_statement", "assessment"}, "the submitted assessment is kept"

    monkeypatch.setitem(handlers.OPERATORS, "index/notify", real)
    result = runtime.engine.retry(episode_id, people["admin"])
    assert (result.status, result.stage) == ("open", "delivery")
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(IndexEntry)) == 1
        assert session.get(Episode, episode_id).last_error is None
    with pytest.raises(NothingToRetry):
        runtime.engine.retry(episode_id, people["admin"])
