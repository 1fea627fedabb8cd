"""A deadline that cannot be fired for a reason that will not pass by itself (here: a state the
engine refuses to load) is tried again after 1, 2, 4 ... minutes, not on every pass; its traceback
is logged once and one line after that; it is counted; after three failures its episode is in
error for administrators to see, audited; and once it can be fired it is, and all is forgotten.
The clock is moved, never waited for."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import time_machine
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.jobs.failing_deadlines import FailingDeadlines, pause_after
from app.jobs.timers import fire_due_timers
from app.models import AuditEvent, Episode, OutboxMessage

from .journeys import prepare


def wake_failures() -> float:
    return REGISTRY.get_sample_value("ecaf_timer_wake_failures_total") or 0.0


def set_serializer_version(runtime, episode_id: int, version: str | None) -> str | None:
    """Make the episode's state one the engine refuses to read (or readable again). Returns the old version."""
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        before, episode.serializer_version = episode.serializer_version, version
        return before


def episode(runtime, episode_id: int) -> Episode:
    with runtime.db.session() as session:
        found = session.get(Episode, episode_id)
        session.expunge(found)
        return found


def audited(runtime, episode_id: int) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.episode_id == episode_id,
                                                             AuditEvent.action == "deadline_failed")))


def alerts(runtime, episode_id: int) -> int:
    with runtime.db.session() as session:
        return len(session.scalars(select(OutboxMessage).where(OutboxMessage.episode_id == episode_id,
                                                               OutboxMessage.kind == "overdue_alert")).all())


def test_a_deadline_that_keeps_failing_backs_off_is_counted_and_shown_then_fires_when_it_can(
        runtime, people, caplog):
    episode_id = prepare(runtime, people)
    due = episode(runtime, episode_id).next_timer_at
    readable = set_serializer_version(runtime, episode_id, "0")
    failing, counted = FailingDeadlines(), wake_failures()

    def pass_() -> tuple[int, int]:
        report = fire_due_timers(runtime, failing=failing)
        return report.woken, report.failed

    with time_machine.travel(due + timedelta(seconds=1), tick=False) as clock:
        with caplog.at_level(logging.WARNING):
            assert pass_() == (0, 1)
            assert [pass_() for _ in range(5)] == [(0, 0)] * 5, "not tried again on every pass"
            clock.shift(timedelta(seconds=61))
            assert pass_() == (0, 1)
            clock.shift(timedelta(seconds=60))
            assert pass_() == (0, 0), "the second pause is two minutes"
            assert episode(runtime, episode_id).status == "open", "not yet shown: it may have been a one-off"
            clock.shift(timedelta(seconds=61))
            assert pass_() == (0, 1)
        failures = [r for r in caplog.records if r.getMessage().startswith("the deadline of episode")]
        assert len(failures) == 3 and [bool(r.exc_info) for r in failures] == [True, False, False], \
            "the traceback once, then one line per failure"
        assert "StateVersionRefused" in caplog.text and "trying again in 4 minutes" in caplog.text
        assert wake_failures() == counted + 3

        shown = episode(runtime, episode_id)
        assert (shown.status, shown.error_task) == ("error", "Deadline")
        assert "could not be fired (3 tries): StateVersionRefused" in shown.last_error
        assert shown.next_timer_at == due, "still due: nothing else changed"
        [event] = audited(runtime, episode_id)
        assert event.actor_id is None and event.detail["failures"] == 3

        set_serializer_version(runtime, episode_id, readable)  # repaired (say, by a release)
        clock.shift(timedelta(minutes=4, seconds=1))
        with caplog.at_level(logging.WARNING):
            assert pass_() == (1, 0)
        assert "fired after 3 failures" in caplog.text
    assert len(failing) == 0, "forgotten once it fired"
    fired = episode(runtime, episode_id)
    assert (fired.status, fired.last_error, fired.error_task) == ("open", None, None)
    assert alerts(runtime, episode_id) == 1 and len(audited(runtime, episode_id)) == 1


def test_a_deadline_that_moves_starts_afresh_and_the_memory_is_bounded(runtime):
    failing = FailingDeadlines(remembered_at_most=2)
    error = ValueError("unreadable")
    with time_machine.travel("2026-03-02 09:00", tick=False):
        due = datetime(2026, 3, 1, 9, 0)
        for episode_id in (1, 2):
            failing.failed(runtime, episode_id, due, error)
        assert failing.waiting(1, due) and failing.waiting(2, due)
        assert not failing.waiting(1, due + timedelta(days=1)), "a moved deadline is tried at once"
        assert len(failing) == 1
        failing.failed(runtime, 3, due, error)
        failing.failed(runtime, 4, due, error)
        assert len(failing) == 2 and not failing.waiting(2, due), "the oldest is forgotten first"
    assert [pause_after(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_an_episode_already_in_error_keeps_its_own_error(runtime, people):
    from app.jobs.failing_deadlines import record_on_episode

    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        row = session.get(Episode, episode_id)
        row.status, row.error_task, row.last_error = "error", "Send alert", "the handler's own fault"
        due = row.next_timer_at
    assert not record_on_episode(runtime, episode_id, due, 3, ValueError("unreadable"))
    kept = episode(runtime, episode_id)
    assert (kept.error_task, kept.last_error) == ("Send alert", "the handler's own fault")
    assert audited(runtime, episode_id) == []
