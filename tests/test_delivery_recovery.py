"""Delivery under faults, against real local servers: a channel that accepts and never answers fails
the attempt after the read timeout; waits grow but stay capped; a channel's outage, however long,
fails nothing, and one recipient's deferral gives up only after a day; refusals of one message
fail it at once with the reason, answers about the channel's settings hold every message; and
when a channel answers again the backlog it held goes out at once, each message exactly once.
The clock is moved, never waited for."""
from __future__ import annotations

import socket
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.clock import now
from app.jobs.channels.smtp import message_id_for
from app.jobs.delivery import DeliveryDeferred, DeliveryFailed, deliver, due_messages
from app.models import OutboxMessage

from .channel_servers import (closed_port, deliveries, index_endpoint, index_notice, message_row,  # noqa: F401
                              no_failing_channels, silent_server, smtp_server, write_message)
from .test_notify import API_KEY, TEMPLATE

TINY = 0.2  # seconds: the timeouts these tests set, so a hanging server costs almost nothing


@pytest.fixture
def tiny_timeouts(runtime):
    runtime.config = replace(runtime.config, channel_connect_timeout_seconds=TINY, channel_read_timeout_seconds=TINY)
    return runtime.config


def _deliver(runtime, message_id):
    return deliver(runtime.db, runtime.config, message_id)


def _fails_for_now(runtime, message_id, match: str, status: str = "pending") -> OutboxMessage:
    with pytest.raises(DeliveryFailed, match=match):
        _deliver(runtime, message_id)
    row = message_row(runtime, message_id)
    assert row.status == status and row.next_attempt_at > now(), "kept, and tried again later"
    return row


# ---------------------------------------------------------------- a channel that never answers

@pytest.mark.parametrize("channel", ["smtp", "index", "notify"])
def test_a_channel_that_accepts_and_never_answers_fails_the_attempt_and_retries(runtime, tiny_timeouts, channel):
    with silent_server() as silent:
        port = silent.port
        if channel == "smtp":
            runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
            message_id = write_message(runtime, key="silent-smtp")
        elif channel == "index":
            message_id = write_message(runtime, channel="index", recipient=f"http://127.0.0.1:{port}/notices",
                                       key="silent-index", payload={"event": "test"})
        else:
            runtime.config = replace(runtime.config, notify_api_key=API_KEY, notify_email_template_id=TEMPLATE,
                                     notify_base_url=f"http://127.0.0.1:{port}")
            message_id = write_message(runtime, key="silent-notify")
        kind = "index" if channel == "index" else "email"
        retries_before = deliveries(kind, "retry")
        # Notify may have taken it: the message stays `sending`, and its next try asks first.
        row = _fails_for_now(runtime, message_id, match=f"did not answer within {TINY} seconds",
                             status="sending" if channel == "notify" else "pending")
    assert (row.attempts, row.sent_at) == (1, None) and f"did not answer within {TINY} seconds" in row.last_error
    assert deliveries(kind, "retry") == retries_before + 1


def test_a_hanging_mail_server_costs_one_timeout_per_wait_and_holds_up_no_other_channel(runtime, tiny_timeouts,
                                                                                        index_endpoint):
    with silent_server() as silent, time_machine.travel(now(), tick=False) as clock:
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=silent.port)
        emails = [write_message(runtime, key=f"hung-{n}", recipient=f"p{n}@testshire.test") for n in range(20)]
        notice = index_notice(runtime, index_endpoint, "notice-during-mail-outage")
        for message_id in due_messages(runtime.db):  # as the sweep does
            try:
                _deliver(runtime, message_id)
            except DeliveryFailed:
                pass
        assert len(silent.connections) == 1, "one message waited for the timeout; the others waited with it"
        assert [key for key, _ in index_endpoint.received] == ["notice-during-mail-outage"]
        assert message_row(runtime, notice).status == "sent"
        rows = [message_row(runtime, message_id) for message_id in emails]
        assert all(r.status == "pending" and r.next_attempt_at > now() for r in rows)
        assert rows[1].attempts == 0 and "not tried" in rows[1].last_error and "did not answer" in rows[1].last_error
        with pytest.raises(DeliveryDeferred, match=r"not tried: .* next try at .* did not answer"):
            _deliver(runtime, emails[1])

        clock.shift(timedelta(seconds=2))  # the wait is over: one try tells whether it answers again
        for message_id in due_messages(runtime.db):
            try:
                _deliver(runtime, message_id)
            except DeliveryFailed:
                pass
        assert len(silent.connections) == 2


def test_a_mail_server_that_cannot_be_reached_fails_after_the_connect_timeout(runtime, tiny_timeouts):
    # A listener whose queue is full and that never accepts: new connections are never completed.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        message_id = write_message(runtime, key="unreachable")
        row = _fails_for_now(runtime, message_id, match=f"could not be reached within {TINY} seconds|did not answer")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert row.attempts == 1


# ---------------------------------------------------------------- waits, and giving up

def test_the_wait_between_tries_grows_and_is_capped(runtime):
    runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=closed_port(),
                             outbox_max_backoff_seconds=12)
    message_id = write_message(runtime, key="capped")
    waits = []
    with time_machine.travel(now(), tick=False) as clock:
        for _ in range(6):
            row = _fails_for_now(runtime, message_id, match="could not be used")
            waits.append((row.next_attempt_at - now()).total_seconds())
            clock.shift(row.next_attempt_at - now())
    assert waits == [2, 5, 10, 12, 12, 12]
    assert "ConnectionRefusedError" in message_row(runtime, message_id).last_error


def test_a_channel_outage_of_days_fails_nothing(runtime):
    runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=closed_port(), outbox_max_attempts=3)
    message_id = write_message(runtime, key="long-outage")
    failed_before = deliveries("email", "failed")
    with time_machine.travel(now(), tick=False) as clock:
        for _ in range(6):  # more than outbox_max_attempts, over three days
            _fails_for_now(runtime, message_id, match="could not be used")
            clock.shift(timedelta(hours=13))
    row = message_row(runtime, message_id)
    assert (row.status, row.attempts) == ("pending", 6) and "ConnectionRefusedError" in row.last_error
    assert deliveries("email", "failed") == failed_before


def test_one_recipient_deferred_for_a_day_is_given_up(runtime):
    with smtp_server() as (mail, port), time_machine.travel(now(), tick=False) as clock:
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port, outbox_max_attempts=3)
        mail.busy = {"full@testshire.test"}
        start = now()
        message_id = write_message(runtime, key="mailbox-full", recipient="full@testshire.test")
        for _ in range(5):  # more than outbox_max_attempts, over hours
            _fails_for_now(runtime, message_id, match="deferred the recipient: 450")
            clock.shift(timedelta(hours=3))
        clock.move_to(start + timedelta(days=1, seconds=1))
        failed_before = deliveries("email", "failed")
        assert _deliver(runtime, message_id) == "failed"
    row = message_row(runtime, message_id)
    assert row.status == "failed" and row.attempts == 6
    assert row.last_error.startswith("given up after 6 attempts over 24 hours") and "450" in row.last_error
    assert deliveries("email", "failed") == failed_before + 1


# ---------------------------------------------------------------- refusals

def test_a_mail_server_refusing_the_recipient_fails_the_message_at_once(runtime):
    with smtp_server() as (mail, port):
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        mail.recipient_answer = "550 5.1.1 No such user here"
        message_id = write_message(runtime, key="no-such-user")
        assert _deliver(runtime, message_id) == "failed"
        row = message_row(runtime, message_id)
        assert row.status == "failed" and "refused the recipient: 550 5.1.1 No such user here" in row.last_error

        mail.recipient_answer = "450 4.2.1 Mailbox busy"  # a deferral is not a refusal
        deferred_id = write_message(runtime, key="mailbox-busy")
        _fails_for_now(runtime, deferred_id, match="deferred the recipient: 450")
    assert mail.received == []


@pytest.mark.parametrize("status, outcome", [(400, "failed"), (413, "failed"), (422, "failed"),
                                             (401, "retry"), (403, "retry"), (404, "retry"), (301, "retry"),
                                             (408, "retry"), (429, "retry"), (503, "retry"), (409, "sent")])
def test_index_answers_are_retried_or_refused_by_their_status(runtime, index_endpoint, status, outcome):
    index_endpoint.status = status
    index_endpoint.headers = {"Location": "https://elsewhere.test/"} if status == 301 else {}
    message_id = index_notice(runtime, index_endpoint, f"status-{status}")
    if outcome == "failed":  # about this notice: the same notice would get the same answer
        assert _deliver(runtime, message_id) == "failed"
        assert f"refused: the index endpoint answered {status}" in message_row(runtime, message_id).last_error
    elif outcome == "retry":  # about the endpoint or its settings: every notice waits, none is failed
        row = _fails_for_now(runtime, message_id, match=f"answered {status}")
        assert ("INDEX_ENDPOINT_URL" in row.last_error) == (status in (401, 403, 404, 301))
    else:  # 409: the endpoint has this Idempotency-Key already
        assert _deliver(runtime, message_id) == "sent"
    assert index_endpoint.tries == 1


def test_an_index_endpoint_asking_to_wait_is_honoured_up_to_the_cap(runtime, index_endpoint):
    index_endpoint.status, index_endpoint.headers = 429, {"Retry-After": "20"}
    with time_machine.travel(now(), tick=False) as clock:
        row = _fails_for_now(runtime, index_notice(runtime, index_endpoint, "wait-20"), match="429")
        assert row.next_attempt_at == now() + timedelta(seconds=20)
        clock.shift(timedelta(seconds=20))
        index_endpoint.headers = {"Retry-After": "86400"}
        row = _fails_for_now(runtime, index_notice(runtime, index_endpoint, "wait-a-day"), match="429")
        assert row.next_attempt_at == now() + timedelta(seconds=runtime.config.outbox_max_backoff_seconds)


# ---------------------------------------------------------------- recovery: the backlog goes at once

def _pending_backlog(runtime, channel: str) -> list[OutboxMessage]:
    with runtime.db.session() as session:
        return list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.channel == channel, OutboxMessage.status == "pending").order_by(OutboxMessage.id)))


def test_index_endpoint_answering_500_then_recovering_sends_the_backlog_at_once_and_once(runtime, index_endpoint):
    index_endpoint.status = 500
    with time_machine.travel(now(), tick=False) as clock:
        backlog = [index_notice(runtime, index_endpoint, f"notice-{n}") for n in range(5)]
        email_id = write_message(runtime, key="email-unrelated")
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=closed_port())
        _fails_for_now(runtime, email_id, match="could not be used")  # another channel's outage
        for minute in range(8):  # the outage goes on: every due notice is tried, or put back with the channel
            clock.shift(timedelta(seconds=10 if minute else 0))
            for message_id in backlog:
                if message_row(runtime, message_id).next_attempt_at <= now():
                    _fails_for_now(runtime, message_id, match="answered 500")
        waiting = _pending_backlog(runtime, "index")
        assert len(waiting) == 5 and all(m.next_attempt_at > now() for m in waiting), "each at its own backoff"
        assert set(due_messages(runtime.db)) == {email_id}, "no notice is due before its backoff"
        tried_in_outage = index_endpoint.tries
        assert tried_in_outage < 5 * 8, "a failing endpoint is not asked for every message every time"

        index_endpoint.status = 202  # the endpoint is back: within the longest wait one new notice goes ...
        clock.shift(timedelta(seconds=runtime.config.outbox_max_backoff_seconds))
        newcomer = index_notice(runtime, index_endpoint, "notice-new")
        assert _deliver(runtime, newcomer) == "sent"
        # ... and the whole backlog with it, without waiting for anyone's backoff.
        assert _pending_backlog(runtime, "index") == []
    keys = [key for key, _ in index_endpoint.received]
    assert sorted(keys) == sorted(["notice-new"] + [f"notice-{n}" for n in range(5)]), "each exactly once"
    assert keys[0] == "notice-new"
    assert message_row(runtime, email_id).status == "pending", "another channel's messages keep their wait"
    with time_machine.travel(now() + timedelta(minutes=5), tick=False):
        for message_id in backlog:
            assert _deliver(runtime, message_id) == "sent"
    assert len(index_endpoint.received) == 6, "nothing sent twice afterwards"


def test_the_backlog_stops_when_the_channel_fails_again(runtime, index_endpoint):
    index_endpoint.status = 503
    with time_machine.travel(now(), tick=False) as clock:
        backlog = [index_notice(runtime, index_endpoint, f"again-{n}") for n in range(5)]
        for message_id in backlog:
            _fails_for_now(runtime, message_id, match="503")
        clock.shift(timedelta(seconds=runtime.config.outbox_max_backoff_seconds))
        first = index_notice(runtime, index_endpoint, "again-first")
        tries_before = index_endpoint.tries
        index_endpoint.script = [202]  # accepts the newcomer, then falls over again
        assert _deliver(runtime, first) == "sent"
    assert index_endpoint.tries == tries_before + 2, "one try of the backlog, then it waits with the endpoint"
    assert [key for key, _ in index_endpoint.received] == ["again-first"]
    assert len(_pending_backlog(runtime, "index")) == 5


def test_one_message_that_always_fails_does_not_hold_the_others_behind_it(runtime, index_endpoint):
    index_endpoint.poison = {"poison"}
    with time_machine.travel(now(), tick=False) as clock:
        poison = index_notice(runtime, index_endpoint, "poison")
        _fails_for_now(runtime, poison, match="answered 500")
        others = [index_notice(runtime, index_endpoint, f"fine-{n}") for n in range(4)]
        for message_id in others:
            _fails_for_now(runtime, message_id, match="not tried")  # the endpoint seems down: they wait with it
        for _ in range(3):
            clock.shift(timedelta(seconds=runtime.config.outbox_max_backoff_seconds))
            for message_id in due_messages(runtime.db):  # as the sweep does
                try:
                    _deliver(runtime, message_id)
                except DeliveryFailed:
                    pass
    assert sorted(key for key, _ in index_endpoint.received) == [f"fine-{n}" for n in range(4)]
    assert [m.id for m in _pending_backlog(runtime, "index")] == [poison]


def test_messages_one_recipient_deferred_keep_their_own_wait_when_the_channel_takes_another(runtime):
    with smtp_server() as (mail, port), time_machine.travel(now(), tick=False) as clock:
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        mail.busy = {"p0@testshire.test", "p1@testshire.test"}
        deferred = [write_message(runtime, key=f"busy-{n}", recipient=f"p{n}@testshire.test") for n in range(2)]
        waits = [_fails_for_now(runtime, message_id, match="450").next_attempt_at for message_id in deferred]
        mail.busy = {"p0@testshire.test"}  # only the first mailbox stays busy
        assert _deliver(runtime, write_message(runtime, key="busy-new", recipient="new@testshire.test")) == "sent"
        assert [message_row(runtime, m).next_attempt_at for m in deferred] == waits, "not made due by it"
        clock.shift(max(waits) - now())
        for message_id in due_messages(runtime.db):
            try:
                _deliver(runtime, message_id)
            except DeliveryFailed:
                pass
    assert [m.id for m in _pending_backlog(runtime, "email")] == [deferred[0]]
    assert len(mail.received) == 2


def test_smtp_refusing_then_recovering_loses_nothing_and_sends_nothing_twice(runtime):
    with smtp_server() as (mail, port), time_machine.travel(now(), tick=False) as clock:
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        mail.data_answer = "451 4.3.0 Try again later"
        backlog = [write_message(runtime, key=f"mail-{n}", recipient=f"p{n}@testshire.test") for n in range(4)]
        for _ in range(3):
            for message_id in backlog:
                if message_row(runtime, message_id).next_attempt_at <= now():
                    _fails_for_now(runtime, message_id, match="451")
            clock.shift(timedelta(seconds=4))
        assert mail.received == [] and len(_pending_backlog(runtime, "email")) == 4

        mail.data_answer = None
        clock.shift(timedelta(seconds=30))  # all due again; the first to be tried brings the others along
        assert _deliver(runtime, backlog[-1]) == "sent"
        assert _pending_backlog(runtime, "email") == []
        for message_id in backlog:
            assert _deliver(runtime, message_id) == "sent"
    ids = sorted(line for text in mail.received for line in text.splitlines() if line.startswith("Message-ID:"))
    assert ids == sorted(f"Message-ID: {message_id_for(f'mail-{n}')}" for n in range(4)), "each exactly once"


# ---------------------------------------------------------------- what travels with a message

def _with_request_id(runtime, message_id: int, request_id: str | None) -> None:
    if not hasattr(OutboxMessage, "request_id"):
        pytest.skip("outbox messages do not record a request id in this schema")
    with runtime.db.session() as session:
        session.get(OutboxMessage, message_id).request_id = request_id


@pytest.mark.parametrize("request_id, sent_as", [("req-0123456789abcdef", "req-0123456789abcdef"),
                                                 ("not acceptable\r\nBcc: x@evil.test", None)])
def test_email_by_smtp_carries_its_key_and_request_id(runtime, request_id, sent_as):
    with smtp_server() as (mail, port):
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        message_id = write_message(runtime, key="with-ids:1")
        _with_request_id(runtime, message_id, request_id)
        assert _deliver(runtime, message_id) == "sent"
    [received] = mail.received
    assert f"Message-ID: {message_id_for('with-ids:1')}" in received
    headers = received.split("\n\n", 1)[0]
    assert (f"X-Request-Id: {sent_as}" in headers) if sent_as else ("X-Request-Id" not in headers and "Bcc" not in headers)


def test_an_index_notice_carries_its_key_and_request_id(runtime, index_endpoint):
    message_id = index_notice(runtime, index_endpoint, "notice-with-ids")
    _with_request_id(runtime, message_id, "req-0123456789abcdef")
    assert _deliver(runtime, message_id) == "sent"
    assert [key for key, _ in index_endpoint.received] == ["notice-with-ids"]
    assert index_endpoint.request_ids == ["req-0123456789abcdef"]


def test_an_address_with_a_line_break_is_refused_not_retried(runtime):
    with smtp_server() as (mail, port):
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        message_id = write_message(runtime, key="injected", recipient="someone@testshire.test\r\nBcc: x@evil.test")
        assert _deliver(runtime, message_id) == "failed"
    assert "cannot be written as an email" in message_row(runtime, message_id).last_error
    assert mail.received == []
