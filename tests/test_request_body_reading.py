"""A request's body is read before its transaction begins, so a slow or large upload holds no lock:
on SQLite another writer can begin, on PostgreSQL no connection waits idle in a transaction and the
session row is free, while the body is still being read (the last-seen time due to be written)."""
from __future__ import annotations

import io
import sqlite3
from datetime import timedelta

import psycopg
import pytest
import time_machine

from app.clock import now
from tests.web import browser


class BodyThatLooksAround:
    """A request body; while it is being read, another connection tries what a concurrent request would."""

    def __init__(self, data: bytes, probe):
        self.data, self.inner = data, io.BytesIO(data)
        self.probe, self.seen = probe, []

    def tell(self):
        return self.inner.tell()

    def seek(self, *args):
        return self.inner.seek(*args)

    def getvalue(self):
        return self.data

    def _look(self):
        if not self.seen:
            self.seen.append(self.probe())

    def read(self, *args):
        self._look()
        return self.inner.read(*args)

    def readinto(self, buffer):
        self._look()
        return self.inner.readinto(buffer)

    def readline(self, *args):
        self._look()
        return self.inner.readline(*args)


def _probe_for(runtime, session_row_id_of):
    url = runtime.db.url
    if runtime.db.is_sqlite:
        path = url.split("///", 1)[1]

        def probe():
            other = sqlite3.connect(path, timeout=0.3, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                return "another writer could begin"
            except sqlite3.OperationalError as exc:
                return f"another writer was refused: {exc}"
            finally:
                other.close()
        return probe

    def probe():
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as other:
            states = other.execute("SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'").fetchall()
            try:
                other.execute("SET lock_timeout = '300ms'")
                other.execute("SELECT 1 FROM web_session WHERE id = %s FOR UPDATE", (session_row_id_of(),))
                locked = "the session row was free"
            except psycopg.errors.LockNotAvailable:
                locked = "the session row was locked"
            return f"{len(states)} idle-in-transaction; {locked}"
    return probe


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/json"])
def test_no_transaction_is_held_while_a_request_body_is_read(web, content_type):
    from app.web.sessions import _digest
    app, runtime = web["app"], web["runtime"]
    client = browser(app)
    client.sign_in("olive", web["secrets"]["originator"])
    token = next(c.value for c in client.client._cookies.values() if c.key.endswith("ecaf-session"))
    probe = _probe_for(runtime, lambda: _digest(token))
    body = BodyThatLooksAround(b"csrf_token=x&" + b"a=" + b"x" * 1000, probe)
    with time_machine.travel(now() + timedelta(seconds=31), tick=False):
        client.client.post("/tasks/1/claim", input_stream=body, content_length=len(body.getvalue()),
                           content_type=content_type)
    if content_type == "application/json":
        body._look()  # nothing read it (the CSRF check refuses it first): look once the request is over
    assert body.seen and ("could begin" in body.seen[0] or "0 idle-in-transaction; the session row was free"
                          in body.seen[0]), body.seen
