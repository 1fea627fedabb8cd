"""A mail server for benchmarks: takes every message, keeps only its Message-ID, counts repeats.

It stands in for the council's mail relay, which runs on another machine: on this one it shares the
two cores with the workers being measured, so it does as little as an SMTP server can (no parsing
beyond the commands and the Message-ID line); aiosmtpd took about a fifth of the workers' own CPU.
"""
from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_END_OF_DATA = b"\r\n.\r\n"


class _Session(asyncio.Protocol):
    def __init__(self, sink: "SmtpSink"):
        self.sink, self.buffer, self.in_data = sink, b"", False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(_END_OF_DATA)
                if end < 0:
                    return
                message, self.buffer, self.in_data = self.buffer[:end + 2], self.buffer[end + 5:], False
                found = _MESSAGE_ID.search(message)
                self.sink.received(found.group(1).decode() if found else "")
                self.transport.write(b"250 OK\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            self.transport.write(self._answer(line[:4].upper()))

    def _answer(self, verb: bytes) -> bytes:
        if verb == b"EHLO":
            return b"250-sink\r\n250 8BITMIME\r\n"
        if verb == b"DATA":
            self.in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"QUIT":
            self.transport.write(b"221 Bye\r\n")
            self.transport.close()
            return b""
        return b"250 OK\r\n"  # HELO, MAIL, RCPT, RSET, NOOP


class SmtpSink:
    """Started on a free port of 127.0.0.1 in a thread of its own; `message_ids` counts each Message-ID."""

    def __init__(self):
        self.message_ids: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Session(self), "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-sink", daemon=True)
        self._thread.start()

    def received(self, message_id: str) -> None:
        with self._lock:
            self.message_ids[message_id] += 1

    def repeats(self) -> int:
        with self._lock:
            return sum(n - 1 for n in self.message_ids.values() if n > 1)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
