"""Transient database errors roll a step back and run it again; only a handler's own fault is an
episode error. Real PostgreSQL locks, timeouts and terminated connections; a real SQLite lock."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import timedelta

import psycopg
import pytest
import time_machine
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from SpiffWorkflow.exceptions import WorkflowException

import handlers
from app.db import normalise_url
from app.engine.errors import StepInterrupted
from app.engine.step_retries import transient_kind
from app.jobs.timers import fire_due_timers
from app.models import AdminAlert, AuditEvent, Episode, HumanTask, OutboxMessage

from .journeys import prepare, start
from .web import browser, csrf_token, text_of

FAST = (0.01, 0.01, 0.01, 0.01)


def postgresql_only(runtime) -> None:
    if not runtime.db.is_postgresql:
        pytest.skip("row locks, lock_timeout and pg_terminate_backend are PostgreSQL's")


def retries(kind: str) -> float:
    return REGISTRY.get_sample_value("ecaf_step_retries_total", {"kind": kind}) or 0.0


def steps(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("ecaf_step_seconds_count", {"kind": kind, "outcome": outcome}) or 0.0


def with_lock_timeout(db, milliseconds: int = 100) -> None:
    """Every connection of `db` gives up waiting for a lock after `milliseconds` (SQLSTATE 55P03)."""
    def limit(dbapi_connection, _record):
        dbapi_connection.execute(f"SET lock_timeout = '{milliseconds}ms'")
        dbapi_connection.commit()

    event.listen(db.engine, "connect", limit)
    db.engine.dispose()


class TableLock:
    """A second connection holding a table lock: inserts (and updates) into it wait until released."""

    def __init__(self, url: str, table: str):
        self.engine = create_engine(normalise_url(url))
        self.connection = self.engine.connect()
        self.pid = self.connection.execute(text("SELECT pg_backend_pid()")).scalar()
        self.connection.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
            self.connection = None
        self.engine.dispose()


def release_after_first_retry(lock: TableLock, kind: str) -> threading.Thread:
    before = retries(kind)

    def watch():
        deadline = time.monotonic() + 30
        while retries(kind) == before and time.monotonic() < deadline:
            time.sleep(0.005)
        lock.release()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def due_time(runtime, episode_id):
    with runtime.db.session() as session:
        return session.get(Episode, episode_id).next_timer_at


def fired(runtime, episode_id) -> dict:
    with runtime.db.session() as session:
        def count(model, *where):
            return session.scalar(select(func.count()).select_from(model).where(*where))
        return {"alerts": count(AdminAlert, AdminAlert.episode_id == episode_id),
                "messages": count(OutboxMessage, OutboxMessage.episode_id == episode_id,
                                  OutboxMessage.kind == "overdue_alert"),
                "audited": count(AuditEvent, AuditEvent.episode_id == episode_id,
                                 AuditEvent.action == "deadline_missed"),
                "status": session.get(Episode, episode_id).status}


# ---------------------------------------------------------------- what counts as transient

def test_real_database_errors_are_told_apart(database_urls):
    if "postgresql" in database_urls:
        engine = create_engine(normalise_url(database_urls["postgresql"]))
        with engine.connect() as connection:
            connection.execute(text("SET statement_timeout = '10ms'"))
            with pytest.raises(OperationalError) as cancelled:
                connection.execute(text("SELECT pg_sleep(1)"))
        with engine.connect() as connection:
            with pytest.raises(IntegrityError) as duplicate:
                connection.execute(text("CREATE TEMP TABLE t (id int primary key)"))
                connection.execute(text("INSERT INTO t VALUES (1), (1)"))
        engine.dispose()
        assert transient_kind(cancelled.value) == "statement_timeout"
        assert transient_kind(duplicate.value) is None, "a broken rule is a fault, not bad luck"
    path = database_urls["sqlite"].removeprefix("sqlite:///")
    first, second = sqlite3.connect(path, timeout=0), sqlite3.connect(path, timeout=0)
    first.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as locked:
        second.execute("BEGIN IMMEDIATE")
    first.rollback()
    first.close(), second.close()
    assert transient_kind(locked.value) == "locked"
    for error, kind in ((psycopg.errors.DeadlockDetected(), "deadlock"),
                        (psycopg.errors.SerializationFailure(), "serialization"),
                        (psycopg.errors.LockNotAvailable(), "lock_timeout"),
                        (psycopg.errors.AdminShutdown(), "connection"),
                        (psycopg.OperationalError("server closed the connection unexpectedly"), "connection"),
                        (ValueError("the handler's own fault"), None)):
        assert transient_kind(error) == kind
        # SpiffWorkflow wraps a handler's exception: the cause is looked for underneath.
        try:
            try:
                raise error
            except Exception as inner:
                raise WorkflowException("deadlines/overdue_warning failed") from inner
        except WorkflowException as wrapped:
            assert transient_kind(wrapped) == kind


# ---------------------------------------------------------------- a wake meets a lock

def test_a_lock_timeout_in_a_deadlines_handler_is_retried_and_the_deadline_fires_once(runtime, people):
    postgresql_only(runtime)
    episode_id = prepare(runtime, people)
    due = due_time(runtime, episode_id)
    with_lock_timeout(runtime.db)
    lock = TableLock(runtime.config.database_url, "admin_alert")  # the handler raises an alert: it must wait
    watcher = release_after_first_retry(lock, "wake")
    before = retries("wake")
    try:
        with time_machine.travel(due + timedelta(seconds=1), tick=False):
            assert fire_due_timers(runtime).woken == 1
            assert fire_due_timers(runtime).woken == 0
    finally:
        lock.release()
        watcher.join()
    assert retries("wake") > before, "the first try hit the lock timeout and was rolled back"
    assert fired(runtime, episode_id) == {"alerts": 1, "messages": 1, "audited": 1, "status": "open"}


def test_when_the_tries_run_out_a_wake_leaves_the_episode_due_and_unchanged(runtime, people, caplog):
    postgresql_only(runtime)
    episode_id = prepare(runtime, people)
    due = due_time(runtime, episode_id)
    with runtime.db.session() as session:
        before = session.get(Episode, episode_id).state
    with_lock_timeout(runtime.db, 20)
    runtime.engine.retry_pauses = FAST
    lock = TableLock(runtime.config.database_url, "admin_alert")
    try:
        with time_machine.travel(due + timedelta(seconds=1), tick=False):
            with pytest.raises(StepInterrupted) as interrupted:
                runtime.engine.wake(episode_id)
            assert interrupted.value.kind == "lock_timeout"
            with caplog.at_level(logging.WARNING):
                report = fire_due_timers(runtime)
            assert (report.woken, report.failed) == (0, 1) and "stays due" in caplog.text
    finally:
        lock.release()
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        assert (episode.status, episode.next_timer_at, episode.state) == ("open", due, before)
    assert fired(runtime, episode_id) == {"alerts": 0, "messages": 0, "audited": 0, "status": "open"}
    with time_machine.travel(due + timedelta(seconds=5), tick=False):
        assert fire_due_timers(runtime).woken == 1, "the next pass fires it"
    assert fired(runtime, episode_id)["alerts"] == 1


def test_a_handler_raising_its_own_error_still_puts_the_episode_in_error(runtime, people, monkeypatch):
    def refuses(ctx):
        raise RuntimeError("the alert service refused the episode")

    monkeypatch.setitem(handlers.OPERATORS, "deadlines/overdue_warning", refuses)
    episode_id = prepare(runtime, people)
    due = due_time(runtime, episode_id)
    before_retries, before_errors = retries("wake"), steps("wake", "error")
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        result = runtime.engine.wake(episode_id)
        assert fire_due_timers(runtime).woken == 0, "the failed deadline is not fired again on every pass"
    assert result.status == "error" and "the alert service refused the episode" in result.error
    assert retries("wake") == before_retries, "a handler's own fault is not tried again"
    assert steps("wake", "error") == before_errors + 1


def test_a_connection_terminated_in_the_middle_of_a_step_is_recovered(runtime, people):
    postgresql_only(runtime)
    episode_id = prepare(runtime, people)
    due = due_time(runtime, episode_id)
    lock = TableLock(runtime.config.database_url, "admin_alert")  # holds the step where we can see it
    outcome: dict = {}

    def wake():
        try:
            outcome["result"] = runtime.engine.wake(episode_id)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    before = retries("wake")
    try:
        with time_machine.travel(due + timedelta(seconds=1), tick=False):
            step = threading.Thread(target=wake)
            step.start()
            waiting = None
            deadline = time.monotonic() + 20
            while waiting is None and time.monotonic() < deadline:
                # The lock's transaction would see its first snapshot of pg_stat_activity for ever: fresh each time.
                lock.connection.execute(text("SELECT pg_stat_clear_snapshot()"))
                waiting = lock.connection.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar()
                time.sleep(0.01)
            assert waiting is not None, "the step never reached the locked table"
            lock.connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting})
            lock.release()
            step.join(timeout=30)
    finally:
        lock.release()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] is not None and outcome["result"].status == "open"
    assert retries("wake") > before
    assert fired(runtime, episode_id) == {"alerts": 1, "messages": 1, "audited": 1, "status": "open"}


# ---------------------------------------------------------------- a person's step

def test_a_users_step_the_database_cannot_finish_answers_503_and_changes_nothing(web):
    runtime, people = web["runtime"], web["people"]
    postgresql_only(runtime)
    episode_id = start(runtime, people)
    app_runtime = web["app"].extensions["ecaf"]
    with_lock_timeout(app_runtime.db, 20)
    app_runtime.engine.retry_pauses = FAST
    with runtime.db.session() as session:
        task = session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                      HumanTask.name == "pre_assessment_checklist"))
    client = browser(web["app"])
    client.sign_in("olive", web["secrets"]["originator"])
    form = {"action": "submit", "decision": "full_caf"}
    token = csrf_token(client.get(f"/tasks/{task.id}").get_data(as_text=True))
    before = retries("complete")
    lock = TableLock(runtime.config.database_url, "human_task")  # the step marks the task done: it waits
    try:
        answer = client.client.post(f"/tasks/{task.id}", data={**form, "csrf_token": token})
    finally:
        lock.release()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    words = text_of(answer)
    assert "nothing was changed" in words and "try again" in words and "Traceback" not in words
    assert retries("complete") == before + len(FAST)
    with runtime.db.session() as session:
        assert session.get(HumanTask, task.id).status == "ready"
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "task_completed")) == 0
    again = client.post(f"/tasks/{task.id}", form)
    assert again.status_code == 302, "the same step goes through once the database answers"
    with runtime.db.session() as session:
        assert session.get(HumanTask, task.id).status == "completed"


def test_every_step_leaves_one_log_line_of_ids_and_kinds(runtime, people, caplog):
    with caplog.at_level(logging.INFO, logger="ecaf.step"):
        episode_id = prepare(runtime, people)
    events = [r.event for r in caplog.records if r.name == "ecaf.step"]
    assert [(e["kind"], e["outcome"]) for e in events] == [("start", "ok"), ("complete", "ok"), ("complete", "ok")]
    assert {e["episode_id"] for e in events} == {episode_id}
    assert all(set(e) == {"kind", "episode_id", "outcome", "seconds", "request_id"} for e in events)
    assert "Casey" not in caplog.text and "Pat Parent" not in caplog.text
