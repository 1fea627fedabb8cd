"""The outside world eCAF delivers to, recording everything it receives: an SMTP server (each
message's Message-ID) and the national index endpoint (each notice's Idempotency-Key)."""
from __future__ import annotations

import email
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from aiosmtpd.controller import Controller

from tests.conftest import local_http_server


@dataclass(frozen=True)
class Receipt:
    key: str  # the Message-ID or Idempotency-Key, as received
    kind: str  # the email's subject or the notice's body, for messages about a failure
    at: float  # time.time() when received


class _MailRecorder:
    def __init__(self):
        self.received: list[Receipt] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self._lock:
            self.received.append(Receipt(message.get("Message-ID", ""), message.get("Subject", ""), time.time()))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def recording_smtp_server():
    """Yields (recorder, port): recorder.received lists every message accepted."""
    recorder = _MailRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


class _IndexHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(Receipt(self.headers.get("Idempotency-Key", ""), body.decode(errors="replace"),
                                            time.time()))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def recording_index_endpoint():
    """Yields (server, url): server.received lists every notice accepted."""
    with local_http_server(_IndexHandler) as server:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/notices"
