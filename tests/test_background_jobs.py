"""rq on a real Redis: scheduled wake-ups fire deadlines, the sweep catches lost jobs, and
outbox delivery retries without ever sending twice. Plus the in-process runner used without Redis."""
from __future__ import annotations

import socket
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
from app.jobs.dispatch import InProcessDispatcher, RqDispatcher
from app.jobs.runtime import set_runtime
from app.models import Episode, MailboxMessage, OutboxMessage

from .conftest import REDIS_URL, unavailable
from .journeys import prepare

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_connection():
    from redis import Redis

    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        connection.ping()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    connection.flushdb()
    yield connection
    connection.flushdb()


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
    SimpleWorker([dispatcher.queue], connection=dispatcher.redis, serializer="json").work(
        burst=True, with_scheduler=True)


def mailbox(runtime, kind: str) -> list[MailboxMessage]:
    with runtime.db.session() as session:
        return list(session.scalars(select(MailboxMessage).join(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_a_scheduled_wake_up_fires_the_deadline(runtime, people, rq):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        due = session.get(Episode, episode_id).next_timer_at
    registry = ScheduledJobRegistry(queue=rq.queue)
    job_id = f"wake-{episode_id}-{int(due.timestamp())}"
    assert job_id in registry.get_job_ids()
    work(rq)  # nothing due yet
    assert mailbox(runtime, "overdue_alert") == []
    with time_machine.travel(due + timedelta(seconds=2), tick=False):
        work(rq)
    assert [m.recipient for m in mailbox(runtime, "overdue_alert")] == ["admin@testshire.test"]
    assert [m.recipient for m in mailbox(runtime, "deletion_warning")] == [people["originator_email"]]


def test_the_sweep_fires_a_deadline_whose_job_was_lost(runtime, people, rq):
    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        due = session.get(Episode, episode_id).next_timer_at
    rq.redis.flushdb()  # Redis lost everything: the scheduled wake-up is gone
    with time_machine.travel(due + timedelta(seconds=2), tick=False):
        work(rq)
        assert mailbox(runtime, "overdue_alert") == []
        rq.enqueue_sweep(slot=1)
        rq.enqueue_sweep(slot=1)  # a second worker asking for the same interval queues nothing more
        assert rq.queue.count == 1
        work(rq)
    assert [m.recipient for m in mailbox(runtime, "overdue_alert")] == ["admin@testshire.test"]


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

    with time_machine.travel(now() + timedelta(seconds=15), tick=False):
        work(rq)  # rq's retry, after its 10-second interval
    assert len(handler.received) == 1 and "Message-ID: <test-message-1@ecaf>" in handler.received[0]

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
        dispatcher.run_due()  # the scheduled wake-up, then deliveries it queued
        dispatcher.run_due()
    assert [m.recipient for m in mailbox(runtime, "overdue_alert")] == ["admin@testshire.test"]
