"""Deadlines are woken in claimed batches: two workers claiming at the same moment wake each due
episode exactly once, one failing episode in a batch changes nothing for the others, and a timer
loop sleeps until the next deadline rather than a fixed poll. The outbox goes in batches too: two
deliverers at once send each message once, a batch over one SMTP connection, and a refused
recipient fails only its own message. The clock is moved, never waited for."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select

import handlers
from app.clock import now
from app.jobs.failing_deadlines import FailingDeadlines
from app.jobs.outbox_batches import deliver_due
from app.jobs.runtime import Runtime
from app.jobs.timers import fire_due_timers, pause_before_next_pass
from app.models import AuditEvent, Child, Episode, HumanTask, OutboxMessage

from .channel_servers import closed_port, no_failing_channels, write_message  # noqa: F401
from .journeys import prepare


def copies(runtime, episode_id: int, count: int, due_in=lambda n: timedelta(0)) -> list[int]:
    """`count` copies of a prepared episode (each with a child of its own), the n-th due
    `due_in(n)` after the original; their stored workflows are the original's."""
    with runtime.db.session() as session:
        original = session.get(Episode, episode_id)
        columns = {c.key: getattr(original, c.key) for c in Episode.__table__.columns if c.key != "id"}
        tasks = [{c.key: getattr(t, c.key) for c in HumanTask.__table__.columns if c.key != "id"}
                 for t in session.scalars(select(HumanTask).where(HumanTask.episode_id == episode_id))]
        made = []
        for n in range(count):
            child = Child(given_names=f"Copy{n}", family_name="Child", date_of_birth=now().date(),
                          home_authority_id=original.authority_id, created_at=now())
            session.add(child)
            session.flush()
            made.append(session.execute(insert(Episode).returning(Episode.id), {
                **columns, "child_id": child.id,
                "next_timer_at": original.next_timer_at + due_in(n)}).scalar_one())
            session.execute(insert(HumanTask), [{**task, "episode_id": made[-1]} for task in tasks])
    return made


def deadlines_missed(runtime) -> dict[int, int]:
    with runtime.db.session() as session:
        return dict(session.execute(select(AuditEvent.episode_id, func.count()).where(
            AuditEvent.action == "deadline_missed").group_by(AuditEvent.episode_id)).all())


def alerts(runtime) -> dict[int, int]:
    with runtime.db.session() as session:
        return dict(session.execute(select(OutboxMessage.episode_id, func.count()).where(
            OutboxMessage.kind == "overdue_alert").group_by(OutboxMessage.episode_id)).all())


def test_two_workers_claiming_batches_at_once_wake_each_episode_exactly_once(runtime, people):
    if not runtime.db.is_postgresql:
        pytest.skip("SQLite runs one writer at a time: claiming side by side needs PostgreSQL's row locks")
    first = prepare(runtime, people)
    episodes = [first, *copies(runtime, first, 29)]
    with runtime.db.session() as session:
        due = session.get(Episode, first).next_timer_at
    other = Runtime.build(runtime.config)  # a second worker: its own engine and connections
    woken, start = [], threading.Barrier(2)

    def worker(which: Runtime) -> None:
        start.wait()
        woken.append(fire_due_timers(which, limit=4).woken)  # small batches, so the two interleave

    try:
        with time_machine.travel(due + timedelta(seconds=2), tick=False):
            threads = [threading.Thread(target=worker, args=(w,)) for w in (runtime, other)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert fire_due_timers(runtime).woken == 0, "nothing left due"
    finally:
        other.db.dispose()
    assert sum(woken) == len(episodes)
    assert deadlines_missed(runtime) == {e: 1 for e in episodes}, "each deadline fired exactly once"
    assert alerts(runtime) == {e: 1 for e in episodes}


def test_a_failing_episode_in_a_batch_leaves_the_others_woken(runtime, people, monkeypatch):
    first = prepare(runtime, people)
    faulty, unreadable, *healthy = copies(runtime, first, 4, due_in=lambda n: timedelta(seconds=n + 1))
    healthy.insert(0, first)
    with runtime.db.session() as session:
        session.get(Episode, unreadable).serializer_version = "0"  # a state the engine refuses to load
        due = session.get(Episode, unreadable).next_timer_at
    warn = handlers.OPERATORS["deadlines/overdue_warning"]

    def refuses_one(ctx):
        if ctx.episode.id == faulty:
            raise RuntimeError("the alert service refused this episode")
        return warn(ctx)

    monkeypatch.setitem(handlers.OPERATORS, "deadlines/overdue_warning", refuses_one)
    failing = FailingDeadlines()
    with time_machine.travel(due + timedelta(seconds=10), tick=False):
        report = fire_due_timers(runtime, failing=failing)  # all five in one batch
    assert (report.woken, report.failed) == (4, 1)
    with runtime.db.session() as session:
        rows = {e.id: e for e in session.scalars(select(Episode))}
    assert rows[faulty].status == "error" and "refused this episode" in rows[faulty].last_error, \
        "a handler's fault puts its own episode in error, as ever"
    assert (rows[unreadable].status, rows[unreadable].next_timer_at) == ("open", due), "rolled back: still due"
    assert len(failing) == 1, "and it waits before its next try"
    assert alerts(runtime) == {e: 1 for e in healthy}
    assert all(rows[e].status == "open" and rows[e].next_timer_at > due for e in healthy)


def test_an_episode_failing_only_at_the_batch_commit_stops_no_other_deadline(runtime, people, monkeypatch):
    first = prepare(runtime, people)
    faulty, *healthy = copies(runtime, first, 4, due_in=lambda n: timedelta(seconds=n + 1))
    healthy.insert(0, first)
    with runtime.db.session() as session:
        due = max(e.next_timer_at for e in session.scalars(select(Episode)))
    warn = handlers.OPERATORS["deadlines/overdue_warning"]

    def unsealable_audit(ctx):
        if ctx.episode.id == faulty:
            ctx.audit("deadline_note", when=now())  # a datetime: the chain cannot seal it, found at commit only
        return warn(ctx)

    monkeypatch.setitem(handlers.OPERATORS, "deadlines/overdue_warning", unsealable_audit)
    failing = FailingDeadlines()
    with time_machine.travel(due + timedelta(seconds=10), tick=False):
        report = fire_due_timers(runtime, failing=failing)
        assert (report.woken, report.failed) == (4, 1)
        assert fire_due_timers(runtime, failing=failing).woken == 0, "the faulty one waits; nothing else is due"
    assert alerts(runtime) == {e: 1 for e in healthy}, "the others' deadlines fired, once each"
    assert len(failing) == 1
    with runtime.db.session() as session:
        assert session.get(Episode, faulty).next_timer_at <= due, "rolled back: still due"


def test_the_timer_loop_sleeps_until_the_next_deadline_at_most_its_poll(runtime, people):
    first = prepare(runtime, people)
    copies(runtime, first, 1, due_in=lambda n: timedelta(seconds=3))
    with runtime.db.session() as session:
        due = session.get(Episode, first).next_timer_at
    with time_machine.travel(due - timedelta(seconds=60), tick=False):
        report = fire_due_timers(runtime)
        assert (report.woken, report.next_due) == (0, due)
        assert pause_before_next_pass(report, 5.0) == 5.0, "never longer than the poll"
    with time_machine.travel(due - timedelta(seconds=2), tick=False):
        assert pause_before_next_pass(fire_due_timers(runtime), 5.0) == 2.0
    with time_machine.travel(due, tick=False):
        report = fire_due_timers(runtime)
        assert (report.woken, report.next_due) == (1, due + timedelta(seconds=3))
        assert pause_before_next_pass(report, 5.0) == 3.0


# ---------------------------------------------------------------- the outbox in batches

class CountingSMTP:
    """Keeps every message, counts connections (one EHLO each), refuses one recipient for good."""

    def __init__(self):
        self.received, self.connections = [], 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "nobody@testshire.test":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content.decode())
        return "250 OK"


def test_two_deliverers_sending_batches_at_once_send_each_message_once_over_few_connections(runtime):
    mail = CountingSMTP()
    server = Controller(mail, hostname="127.0.0.1", port=closed_port())
    server.start()
    try:
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=server.port)
        ids = [write_message(runtime, key=f"batch-{n}", recipient=f"person{n}@testshire.test") for n in range(20)]
        refused = write_message(runtime, key="batch-refused", recipient="nobody@testshire.test")
        ids += [write_message(runtime, key=f"batch-{n}", recipient=f"person{n}@testshire.test") for n in range(20, 40)]
        # SQLite has one writer at a time: there, one deliverer shows the batches.
        deliverers = [runtime] if runtime.db.is_sqlite else [runtime, Runtime.build(runtime.config)]
        start = threading.Barrier(len(deliverers))

        def deliverer(which: Runtime) -> None:
            start.wait()
            deliver_due(which.db, which.config, limit=8)

        threads = [threading.Thread(target=deliverer, args=(d,)) for d in deliverers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()
        for other in deliverers[1:]:
            other.db.dispose()
    message_ids = [line.split(":", 1)[1].strip() for text in mail.received for line in text.splitlines()
                   if line.lower().startswith("message-id:")]
    assert len(message_ids) == 40 and len(set(message_ids)) == 40, "each message once"
    with runtime.db.session() as session:
        statuses = dict(session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    assert [statuses[m] for m in ids] == ["sent"] * 40
    assert statuses[refused] == "failed", "a refused recipient fails its own message, and its batch goes on"
    assert mail.connections <= 8, "a batch goes over one connection"
