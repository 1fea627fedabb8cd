"""Real local servers for delivery tests (a TCP server that accepts and never answers, an SMTP
server whose answers a test sets, a national index endpoint) and helpers to write outbox messages
and read delivery counts."""
from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler

import pytest

from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY

from app.clock import now
from app.jobs.channels import breaker
from app.models import OutboxMessage

from .conftest import local_http_server


@dataclass
class SilentServer:
    port: int
    connections: list = field(default_factory=list)


@contextmanager
def silent_server():
    """A TCP server on a free loopback port that accepts every connection and never says a word.
    Yields it: `.port`, and `.connections` accepted so far."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = SilentServer(listener.getsockname()[1])
    held = server.connections
    stopping = threading.Event()

    def accept():
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)  # kept open, unanswered, until the test ends

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        listener.close()
        for connection in held:
            connection.close()


def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedSMTP:
    """An aiosmtpd handler: refuses the recipient or the message while told to, else keeps it."""

    def __init__(self):
        self.received: list[str] = []
        self.recipient_answer: str | None = None  # e.g. "550 5.1.1 No such user"
        self.data_answer: str | None = None  # e.g. "451 4.3.0 Try again later"
        self.busy: set[str] = set()  # recipients deferred with 450 whatever the answers above

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.recipient_answer:
            return self.recipient_answer
        if address in self.busy:
            return "450 4.2.1 Mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_answer:
            return self.data_answer
        self.received.append(envelope.content.decode())
        return "250 OK"


@pytest.fixture(autouse=True)
def no_failing_channels():
    """What channels failed is kept per process: each delivery test starts afresh. Autouse in every
    module that imports it."""
    breaker.forget_all()
    yield
    breaker.forget_all()


@contextmanager
def smtp_server():
    """A real SMTP server on a free loopback port; yields (handler, port)."""
    handler = ScriptedSMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=closed_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def write_message(runtime, *, channel: str = "email", recipient: str = "someone@testshire.test", key: str,
                  kind: str = "test", subject: str = "Hello", body: str = "A message", payload: dict | None = None,
                  created_at: datetime | None = None) -> int:
    """A pending outbox message, as a step or app/outbox.py writes one. Returns its id."""
    with runtime.db.session() as session:
        message = OutboxMessage(channel=channel, kind=kind, recipient=recipient, subject=subject, body=body,
                                payload=payload, idempotency_key=key, status="pending", attempts=0,
                                next_attempt_at=now(), created_at=created_at or now())
        session.add(message)
        session.flush()
        return message.id


def message_row(runtime, message_id: int) -> OutboxMessage:
    with runtime.db.session() as session:
        return session.get(OutboxMessage, message_id)


def deliveries(channel: str, result: str) -> float:
    """How many delivery attempts of the channel had this result (app.metrics), in this process."""
    return REGISTRY.get_sample_value("ecaf_outbox_deliveries_total", {"channel": channel, "result": result}) or 0.0


class ScriptedIndex(BaseHTTPRequestHandler):
    """The national index endpoint: answers the statuses in `server.script` first, then `server.status`
    (with `server.headers`), keeping what it accepts; 500 always for the keys in `server.poison`.
    `server.posts` has every request's (Idempotency-Key, path, Authorization), repeats included."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.tries += 1
        self.server.posts.append((self.headers["Idempotency-Key"], self.path, self.headers.get("Authorization")))
        self.server.request_ids.append(self.headers.get("X-Request-Id"))
        status = self.server.script.pop(0) if self.server.script else self.server.status
        if self.headers["Idempotency-Key"] in self.server.poison:
            status = 500
        self.send_response(status)
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if status < 300:
            self.server.received.append((self.headers["Idempotency-Key"], body))

    def log_message(self, *args):
        pass


@pytest.fixture
def index_endpoint():
    with local_http_server(ScriptedIndex) as server:
        server.status, server.script, server.headers, server.tries, server.poison = 202, [], {}, 0, set()
        server.request_ids, server.posts = [], []
        server.url = f"http://127.0.0.1:{server.server_address[1]}/notices"
        yield server


def index_notice(runtime, index_endpoint, key: str) -> int:
    return write_message(runtime, channel="index", recipient=index_endpoint.url, key=key, kind="index_notice",
                         payload={"event": "assessment_submitted", "n": key})
