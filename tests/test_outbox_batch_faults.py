"""The outbox in batches when things go wrong part-way: a route that fails mid-batch, a mail server
that takes a few messages per connection, a channel so slow that the first message's claim would run
out before the batch ends, a fault recording one message's outcome. In each, every message goes
exactly once and every outcome that can be recorded is. Real SMTP servers (aiosmtpd) on loopback;
the clock is moved, never waited for."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import select

from app.clock import now
from app.jobs import outbox_batches
from app.jobs.channels import breaker
from app.jobs.outbox_batches import deliver_due
from app.models import OutboxMessage

from .channel_servers import closed_port, no_failing_channels, write_message  # noqa: F401


class LimitedSMTP:
    """Keeps every message; takes at most `per_connection` per connection (a 421 to the next MAIL),
    and answers every MAIL from the `failing_from`-th on with 421 (the server going down)."""

    def __init__(self, per_connection: int = 1000, failing_from: int | None = None):
        self.received, self.connections, self.mails = [], 0, 0
        self.per_connection, self.failing_from, self._taken = per_connection, failing_from, {}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails += 1
        taken = self._taken.get(id(session), 0)
        if (self.failing_from is not None and self.mails >= self.failing_from) or taken >= self.per_connection:
            return "421 4.3.2 Service not available, closing channel"
        self._taken[id(session)] = taken + 1
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.content.decode())
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [line.split(":", 1)[1].strip() for text in self.received for line in text.splitlines()
                if line.lower().startswith("message-id:")]


def serving(runtime, mail: LimitedSMTP) -> Controller:
    server = Controller(mail, hostname="127.0.0.1", port=closed_port())
    server.start()
    runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=server.port)
    return server


def statuses(runtime, ids: list[int]) -> list[str]:
    with runtime.db.session() as session:
        found = dict(session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    return [found[i] for i in ids]


def test_a_route_failing_mid_batch_keeps_what_was_sent_and_gives_the_rest_back(runtime):
    mail = LimitedSMTP(failing_from=3)  # the third MAIL and every one after, even on a new connection
    server = serving(runtime, mail)
    try:
        ids = [write_message(runtime, key=f"mid-{n}", recipient=f"p{n}@testshire.test") for n in range(5)]
        deliver_due(runtime.db, runtime.config)
        assert statuses(runtime, ids) == ["sent", "sent", "pending", "pending", "pending"], \
            "the sent are recorded; the rest wait for the channel"
        with runtime.db.session() as session:
            given_back = session.get(OutboxMessage, ids[4])
            assert given_back.attempts == 0 and "not tried" in given_back.last_error, "its attempt is not counted"
        mail.failing_from = None
        with time_machine.travel(now() + timedelta(hours=2), tick=False):  # the server is fine again
            breaker.forget_all()
            deliver_due(runtime.db, runtime.config)
    finally:
        server.stop()
    assert statuses(runtime, ids) == ["sent"] * 5
    assert len(mail.message_ids()) == len(set(mail.message_ids())) == 5, "each email once"


def test_a_server_taking_few_messages_per_connection_gets_a_new_connection_not_a_failed_channel(runtime):
    mail = LimitedSMTP(per_connection=2)
    server = serving(runtime, mail)
    try:
        ids = [write_message(runtime, key=f"limit-{n}", recipient=f"p{n}@testshire.test") for n in range(6)]
        deliver_due(runtime.db, runtime.config)
    finally:
        server.stop()
    assert statuses(runtime, ids) == ["sent"] * 6, "all in one pass: the channel was never held"
    assert len(set(mail.message_ids())) == len(mail.message_ids()) == 6
    assert mail.connections == 3


def test_a_slow_channel_records_each_outcome_before_its_claim_runs_out(runtime, monkeypatch):
    mail = LimitedSMTP()
    server = serving(runtime, mail)
    real_send, sent = outbox_batches.send_claimed, []
    try:
        ids = [write_message(runtime, key=f"slow-{n}", recipient=f"p{n}@testshire.test") for n in range(8)]
        with time_machine.travel(now() + timedelta(seconds=1), tick=False) as clock:

            def slow_send(config, claim, connection=None):
                outcome = real_send(config, claim, connection)
                sent.append(claim.message.id)
                clock.shift(timedelta(seconds=40))  # within its 4 exchanges of the 15 s read timeout
                if len(sent) == 5:  # meanwhile another deliverer's pass recovers any claim run out
                    monkeypatch.setattr(outbox_batches, "send_claimed", real_send)
                    deliver_due(runtime.db, runtime.config)
                    monkeypatch.setattr(outbox_batches, "send_claimed", slow_send)
                return outcome

            monkeypatch.setattr(outbox_batches, "send_claimed", slow_send)
            deliver_due(runtime.db, runtime.config)
    finally:
        server.stop()
    assert statuses(runtime, ids) == ["sent"] * 8
    assert len(mail.message_ids()) == len(set(mail.message_ids())) == 8, "none sent twice"


def test_a_fault_recording_one_outcome_loses_only_that_one(runtime, monkeypatch):
    mail = LimitedSMTP()
    server = serving(runtime, mail)
    try:
        ids = [write_message(runtime, key=f"book-{n}", recipient=f"p{n}@testshire.test") for n in range(3)]
        record_row = outbox_batches.record_row

        def faulty_for_one(config, claim, message, outcome):
            if claim.message.id == ids[1]:
                raise ValueError("bookkeeping fault")
            return record_row(config, claim, message, outcome)

        monkeypatch.setattr(outbox_batches, "record_row", faulty_for_one)
        deliver_due(runtime.db, runtime.config)
    finally:
        server.stop()
    assert statuses(runtime, ids) == ["sent", "sending", "sent"], "the faulty one waits for its lease to run out"
