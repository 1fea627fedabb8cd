"""Deadlines from the database, deliveries through rq on a real Redis: the timer pass fires a
deadline when it is due (and Redis holds nothing about it), a flushed Redis loses none, two
workers fire it once, and outbox delivery retries without ever sending twice. Plus the in-process
runner used without Redis."""
from __future__ import annotations

import socket
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.clock import now
from app.jobs import tasks
from app.jobs.channels.smtp import message_id_for
from app.jobs.dispatch import InProcessDispatcher, RqDispatcher
from app.jobs.runtime import Runtime, set_runtime
from app.jobs.sweep import sweep_outbox
from app.jobs.timers import fire_due_timers
from app.models import Child, Episode, MailboxMessage, OutboxMessage

from .conftest import REDIS_URL
from .journeys import prepare

pytestmark = pytest.mark.redis



@pytest.fixture
def rq(runtime, redis_connection):
    runtime.config = replace(runtime.config, redis_url=REDIS_URL, queue_name="ecaf-test")
    runtime.engine.config = runtime.config
    dispatcher = RqDispatcher(runtime.config, redis=redis_connection)
    runtime.engine.dispatcher = dispatcher
    set_runtime(runtime)
    yield dispatcher
    set_runtime(None)


def work(dispatcher: RqDispatcher) -> None:
    SimpleWorker([dispatcher.queue], connection=dispatcher.redis, serializer="json").work(burst=True)


def mailbox(runtime, kind: str) -> list[MailboxMessage]:
    with runtime.db.session() as session:
        return list(session.scalars(select(MailboxMessage).join(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_the_timer_pass_fires_the_deadline_when_due_and_redis_holds_nothing_of_it(runtime, people, rq):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        due = session.get(Episode, episode_id).next_timer_at
    work(rq)  # the steps' messages
    assert ScheduledJobRegistry(queue=rq.queue).get_job_ids() == [] and rq.queue.count == 0
    assert fire_due_timers(runtime).woken == 0  # nothing due yet
    assert mailbox(runtime, "overdue_alert") == []
    with time_machine.travel(due + timedelta(seconds=2), tick=False):
        assert fire_due_timers(runtime).woken == 1
        assert fire_due_timers(runtime).woken == 0, "fired once"
        work(rq)  # the messages the deadline wrote go through rq
    assert [m.recipient for m in mailbox(runtime, "overdue_alert")] == ["admin@testshire.test"]
    assert [m.recipient for m in mailbox(runtime, "deletion_warning")] == [people["originator_email"]]


def test_a_flushed_redis_loses_no_deadline_and_no_message(runtime, people, rq):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        due = session.get(Episode, episode_id).next_timer_at
    with time_machine.travel(due + timedelta(seconds=2), tick=False):
        assert fire_due_timers(runtime).woken == 1
        rq.redis.flushdb()  # Redis lost everything, the deadline's delivery jobs with it
        work(rq)
        assert mailbox(runtime, "overdue_alert") == []
        assert sweep_outbox(runtime).delivered >= 2  # the sweep sends what the lost jobs would have
    assert [m.recipient for m in mailbox(runtime, "overdue_alert")] == ["admin@testshire.test"]


def test_two_workers_polling_at_once_fire_a_deadline_once(runtime, people):
    if not runtime.db.is_postgresql:
        pytest.skip("SQLite runs one writer at a time: the race needs PostgreSQL's row locks")
    episode_ids = []
    for n in range(6):
        with runtime.db.session() as session:
            child = session.get(Child, people["child"])
            twin = Child(given_names=f"Twin{n}", family_name=child.family_name, date_of_birth=child.date_of_birth,
                         postcode=child.postcode, address=child.address,
                         home_authority_id=child.home_authority_id, created_at=now())
            session.add(twin)
            session.flush()
        episode_ids.append(prepare(runtime, {**people, "child": twin.id}))
    with runtime.db.session() as session:
        due = max(session.get(Episode, i).next_timer_at for i in episode_ids)
    other = Runtime.build(runtime.config)  # a second worker: its own engine and connections
    woken, start = [], threading.Barrier(2)

    def poll(worker):
        start.wait()
        woken.append(fire_due_timers(worker).woken)

    try:
        with time_machine.travel(due + timedelta(seconds=2), tick=False):
            threads = [threading.Thread(target=poll, args=(w,)) for w in (runtime, other)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        other.db.dispose()
    assert sum(woken) == len(episode_ids)
    with runtime.db.session() as session:
        alerts = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "overdue_alert")).all()
    assert sorted(m.episode_id for m in alerts) == sorted(episode_ids), "each deadline fired exactly once"


class FlakySMTP:
    """An SMTP server that refuses the first message (451) and accepts after that."""

    def __init__(self):
        self.refused, self.received = 0, []

    async def handle_DATA(self, server, session, envelope):
        if self.refused == 0:
            self.refused += 1
            return "451 Try again later"
        self.received.append(envelope.content.decode())
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = FlakySMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_outbox_delivery_retries_and_never_sends_twice(runtime, people, rq, smtp_server):
    handler, port = smtp_server
    runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
    runtime.engine.config = runtime.config
    with runtime.db.session() as session:
        message = OutboxMessage(channel="email", kind="test", recipient="someone@testshire.test", subject="Hello",
                                body="A message", idempotency_key="test-message-1", status="pending",
                                attempts=0, next_attempt_at=now(), created_at=now())
        session.add(message)
    rq.messages_queued([message.id])
    work(rq)
    with runtime.db.session() as session:
        failed_once = session.get(OutboxMessage, message.id)
    assert (failed_once.status, failed_once.attempts) == ("pending", 1)
    assert "451" in failed_once.last_error and handler.received == []

    assert rq.queue.count == 0, "no rq retry: the message's row holds its next try"
    with time_machine.travel(now() + timedelta(seconds=runtime.config.outbox_max_backoff_seconds + 1), tick=False):
        assert sweep_outbox(runtime).delivered == 1  # the worker's delivery loop, when the next try is due
    assert len(handler.received) == 1 and f"Message-ID: {message_id_for('test-message-1')}" in handler.received[0]

    rq.messages_queued([message.id])  # queued again, e.g. by a sweep racing the job
    work(rq)
    assert tasks.deliver_message(message.id) == "sent"
    with runtime.db.session() as session:
        sent = session.get(OutboxMessage, message.id)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert len(handler.received) == 1, "delivered exactly once"


def test_without_redis_the_same_jobs_run_in_process(runtime, people):
    dispatcher = InProcessDispatcher(runtime, sweep_interval=3600)
    runtime.engine.dispatcher = dispatcher
    episode_id = prepare(runtime, people)
    dispatcher.run_due()
    with runtime.db.session() as session:
        due = session.get(Episode, episode_id).next_timer_at
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        dispatcher.run_due()  # the due timer from the database, then the deliveries it queued
    assert [m.recipient for m in mailbox(runtime, "overdue_alert")] == ["admin@testshire.test"]
