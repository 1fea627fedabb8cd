"""GOV.UK Notify as the email channel, against a local HTTP server playing Notify: the client's
signed token, the template, personalisation and reference; 429 and 500 retried; a 403 (a revoked
key, a clock out) or a template that does not fit holds every email until it is fixed, failing
none; 400 for one recipient refused with Notify's reason; nothing sent twice, across retries, two
deliverers, an answer that never came or a database connection cut between sending and recording."""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import time_machine
from sqlalchemy import func, select, text

from app.clock import now
from app.config import ChannelsMisconfigured, Config
from app.jobs.delivery import DeliveryDeferred, DeliveryFailed, deliver, due_messages
from app.models import MailboxMessage, OutboxMessage
from app.services.delivery_reasons import plain_reason

from .channel_servers import deliveries, message_row, no_failing_channels, write_message  # noqa: F401
from .conftest import local_http_server

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"ecaf_test-{SERVICE_ID}-{SECRET}"
TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
LOCKED_TEMPLATE = "0a4d8c0e-3b0f-4a7e-9c1e-5d6f7a8b9c0d"
TEAM_ONLY = "Can't send to this recipient using a team-only API key"


class PlayingNotify(BaseHTTPRequestHandler):
    """POST /v2/notifications/email as Notify answers it. `server.answers` is a list of (status,
    errors, headers) to give before accepting; every request is checked and kept in `received`;
    `server.on_accept` (if set) runs once a message is accepted, before the answer.
    GET /v2/notifications?reference=... lists the emails accepted with that reference, as Notify does."""

    def do_GET(self):
        url = urlsplit(self.path)
        jwt.decode(self.headers.get("Authorization", "").removeprefix("Bearer "), SECRET, algorithms=["HS256"])
        query = parse_qs(url.query)
        self.server.lookups.append(query)
        if url.path != "/v2/notifications":
            self._answer(404, {"errors": [{"error": "NotFound", "message": "Not found"}], "status_code": 404})
            return
        reference = query.get("reference", [None])[0]
        found = [{"id": str(uuid.uuid4()), "reference": reference, "type": "email", "status": "sending"}
                 for accepted in self.server.accepted if accepted == reference]
        self._answer(200, {"notifications": found, "links": {"current": self.path}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])  # signed with the key's secret, or raises
        self.server.received.append({"path": self.path, "claims": claims, "body": body,
                                     "request_id": self.headers.get("X-Request-Id")})
        if self.server.hold is not None:
            self.server.hold.wait(timeout=30)
        if self.server.answers:
            status, errors, headers = self.server.answers.pop(0)
            self._answer(status, {"errors": errors, "status_code": status}, headers)
            return
        self.server.accepted.append(body["reference"])
        if self.server.on_accept is not None:
            self.server.on_accept()
        self._answer(201, {
            "id": str(uuid.uuid4()), "reference": body["reference"], "uri": "http://notify.test/v2/notifications/1",
            "content": {"subject": body["personalisation"]["subject"], "body": body["personalisation"]["body"],
                        "from_email": "ecaf@notifications.service.gov.uk", "one_click_unsubscribe_url": None},
            "template": {"id": body["template_id"], "version": 3, "uri": "http://notify.test/templates/1"},
            "scheduled_for": None})

    def _answer(self, status: int, document: dict, headers: dict | None = None):
        raw = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def notify(runtime):
    with local_http_server(PlayingNotify) as server:
        server.answers, server.accepted, server.hold, server.on_accept, server.lookups = [], [], None, None, []
        runtime.config = replace(runtime.config, notify_api_key=API_KEY,
                                 notify_base_url=f"http://127.0.0.1:{server.server_address[1]}",
                                 notify_email_template_id=TEMPLATE, notify_templates={"account_locked": LOCKED_TEMPLATE},
                                 channel_connect_timeout_seconds=2, channel_read_timeout_seconds=5)
        yield server


def _deliver(runtime, message_id):
    return deliver(runtime.db, runtime.config, message_id)


def test_email_goes_through_notify_with_its_template_words_and_reference(runtime, notify):
    message_id = write_message(runtime, key="password-reset:41", subject="Reset your password",
                               body="Follow the link to reset it.", recipient="olive@testshire.test")
    sent_before = deliveries("email", "sent")
    assert _deliver(runtime, message_id) == "sent"
    [request] = notify.received
    assert request["path"] == "/v2/notifications/email"
    assert request["claims"]["iss"] == SERVICE_ID, "the token names the service the key belongs to"
    assert request["body"] == {
        "email_address": "olive@testshire.test", "template_id": TEMPLATE, "reference": "password-reset:41",
        "personalisation": {"subject": "Reset your password", "body": "Follow the link to reset it."}}
    row = message_row(runtime, message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None) and row.sent_at is not None
    assert deliveries("email", "sent") == sent_before + 1
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(MailboxMessage)) == 0, "Notify comes before the mailbox"

    assert _deliver(runtime, message_id) == "sent"
    assert len(notify.received) == 1, "a sent message is never sent again"


def test_a_kind_named_in_NOTIFY_TEMPLATES_uses_its_own_template(runtime, notify):
    message_id = write_message(runtime, key="account-locked:7", kind="account_locked")
    assert _deliver(runtime, message_id) == "sent"
    assert notify.received[0]["body"]["template_id"] == LOCKED_TEMPLATE


def test_the_request_id_of_the_message_goes_with_it(runtime, notify):
    if not hasattr(OutboxMessage, "request_id"):
        pytest.skip("outbox messages do not record a request id in this schema")
    message_id = write_message(runtime, key="with-request-id")
    with runtime.db.session() as session:
        session.get(OutboxMessage, message_id).request_id = "req-0123456789abcdef"
    assert _deliver(runtime, message_id) == "sent"
    assert notify.received[0]["request_id"] == "req-0123456789abcdef"


def test_rate_limited_by_notify_the_message_waits_as_told_then_goes_once(runtime, notify):
    limited = [{"error": "RateLimitError", "message": "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"}]
    notify.answers = [(429, limited, {"Retry-After": "7"}), (429, limited, {"Retry-After": "3600"})]
    message_id = write_message(runtime, key="rate-limited")
    retries_before = deliveries("email", "retry")
    with time_machine.travel(now(), tick=False) as clock:
        with pytest.raises(DeliveryFailed, match="429"):
            _deliver(runtime, message_id)
        row = message_row(runtime, message_id)
        assert row.status == "pending" and "RateLimitError: Exceeded rate limit" in row.last_error
        assert row.next_attempt_at == now() + timedelta(seconds=7), "Retry-After is honoured"

        clock.shift(timedelta(seconds=7))
        with pytest.raises(DeliveryFailed):
            _deliver(runtime, message_id)
        assert message_row(runtime, message_id).next_attempt_at == now() + timedelta(
            seconds=runtime.config.outbox_max_backoff_seconds), "but never beyond the cap"

        clock.shift(timedelta(seconds=30))
        assert _deliver(runtime, message_id) == "sent"
    assert len(notify.received) == 3 and notify.accepted == ["rate-limited"], "accepted exactly once"
    assert message_row(runtime, message_id).attempts == 3
    assert deliveries("email", "retry") == retries_before + 2


def test_a_notify_server_error_is_retried(runtime, notify):
    notify.answers = [(500, [{"error": "Exception", "message": "Internal server error"}], {})]
    message_id = write_message(runtime, key="server-error")
    with time_machine.travel(now(), tick=False) as clock:
        with pytest.raises(DeliveryFailed, match="500"):
            _deliver(runtime, message_id)
        clock.shift(timedelta(seconds=2))
        assert _deliver(runtime, message_id) == "sent"
    assert notify.accepted == ["server-error"]


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_refusal_of_one_message_fails_it_with_notifys_reason_and_is_not_retried(runtime, notify, status):
    notify.answers = [(status, [{"error": "BadRequestError", "message": TEAM_ONLY}], {})]
    message_id = write_message(runtime, key=f"refused-{status}")
    failed_before = deliveries("email", "failed")
    assert _deliver(runtime, message_id) == "failed"
    row = message_row(runtime, message_id)
    assert row.status == "failed" and f"BadRequestError: {TEAM_ONLY}" in row.last_error and str(status) in row.last_error
    assert deliveries("email", "failed") == failed_before + 1

    with time_machine.travel(now() + timedelta(hours=1), tick=False):
        assert _deliver(runtime, message_id) == "failed"
    assert len(notify.received) == 1 and notify.accepted == [], "never tried again by itself"

    other = write_message(runtime, key=f"after-refused-{status}")
    assert _deliver(runtime, other) == "sent", "one message's refusal holds no other"


CLOCK_OUT = "Error: Your system clock must be accurate to within 30 seconds"


@pytest.mark.parametrize("status, error, message, named", [
    (403, "AuthError", "Invalid token: API key not found", "NOTIFY_API_KEY"),
    (403, "AuthError", CLOCK_OUT, "clock"),
    (401, "AuthError", "Unauthorized: authentication token must be provided", "NOTIFY_API_KEY"),
    (400, "BadRequestError", "Template not found", "NOTIFY_EMAIL_TEMPLATE_ID"),
    (400, "BadRequestError", "Missing personalisation: reference", "NOTIFY_EMAIL_TEMPLATE_ID"),
])
def test_a_key_clock_or_template_notify_refuses_holds_every_email_fails_none_and_all_go_once_fixed(
        runtime, notify, status, error, message, named):
    notify.answers = [(status, [{"error": error, "message": message}], {})] * 3
    runtime.config = replace(runtime.config, outbox_max_attempts=2)  # a message's own fault would give up by then
    failed_before = deliveries("email", "failed")
    with time_machine.travel(now(), tick=False) as clock:
        # An account email (no episode: it could never be sent again by an administrator) and others.
        account_email = write_message(runtime, key="password-reset:9", kind="password_reset")
        with pytest.raises(DeliveryFailed, match=str(status)):
            _deliver(runtime, account_email)
        others = [write_message(runtime, key=f"held-{n}") for n in range(3)]
        for message_id in others:
            with pytest.raises(DeliveryDeferred, match="not tried"):
                _deliver(runtime, message_id)  # the channel's wait: not asked again for each
        row = message_row(runtime, account_email)
        assert row.status == "pending" and f"{error}: {message}" in row.last_error
        assert named in plain_reason(row.last_error), "the System page says what to fix"
        assert len(notify.received) == 1

        for _ in range(2):  # still refused, hours later: waiting, never given up
            clock.shift(timedelta(hours=13))
            with pytest.raises(DeliveryFailed, match=str(status)):
                _deliver(runtime, account_email)
        row = message_row(runtime, account_email)
        assert (row.status, row.attempts) == ("pending", 3)
        assert deliveries("email", "failed") == failed_before, "nothing given up"

        # The key (or clock, or template) is fixed: the next try goes, and every email held with it at once.
        clock.shift(timedelta(seconds=runtime.config.outbox_max_backoff_seconds))
        assert _deliver(runtime, account_email) == "sent"
        assert [message_row(runtime, m).status for m in others] == ["sent"] * 3
    assert sorted(notify.accepted) == sorted(["password-reset:9", "held-0", "held-1", "held-2"])


def test_an_administrator_sends_a_refused_message_again(runtime, notify):
    from app import outbox

    notify.answers = [(400, [{"error": "BadRequestError", "message": TEAM_ONLY}], {})]
    message_id = write_message(runtime, key="sent-again")
    assert _deliver(runtime, message_id) == "failed"
    with runtime.db.session() as session:
        outbox.retry_message(session, session.get(OutboxMessage, message_id))
    assert _deliver(runtime, message_id) == "sent"
    assert notify.accepted == ["sent-again"]


def test_with_a_key_but_no_template_nothing_is_sent_and_the_setting_is_named(runtime, notify):
    runtime.config = replace(runtime.config, notify_email_template_id=None, notify_templates={})
    message_id = write_message(runtime, key="no-template")
    with pytest.raises(DeliveryFailed, match="NOTIFY_EMAIL_TEMPLATE_ID"):
        _deliver(runtime, message_id)
    row = message_row(runtime, message_id)
    assert row.status == "pending" and "NOTIFY_EMAIL_TEMPLATE_ID" in row.last_error, "kept, to go once it is set"
    assert notify.received == []
    with pytest.raises(ChannelsMisconfigured, match="NOTIFY_EMAIL_TEMPLATE_ID"):
        runtime.config.check_channels()


@pytest.mark.parametrize("settings, named", [
    ({"notify_api_key": API_KEY}, "NOTIFY_EMAIL_TEMPLATE_ID"),
    ({"notify_api_key": f"{SERVICE_ID}-{SECRET}", "notify_email_template_id": TEMPLATE}, "NOTIFY_API_KEY"),
    ({"notify_api_key": "ecaf_live-not-a-key", "notify_email_template_id": TEMPLATE}, "NOTIFY_API_KEY"),
    ({"notify_api_key": API_KEY + "\n", "notify_email_template_id": TEMPLATE}, "NOTIFY_API_KEY"),
    ({"notify_api_key": API_KEY, "notify_email_template_id": "welcome email"}, "NOTIFY_EMAIL_TEMPLATE_ID"),
    ({"notify_api_key": API_KEY, "notify_email_template_id": TEMPLATE, "notify_templates": {"x": "y"}},
     "NOTIFY_TEMPLATES"),
    ({"channel_read_timeout_seconds": 0}, "ECAF_CHANNEL_READ_TIMEOUT"),
])
def test_channel_settings_that_cannot_work_stop_the_start(settings, named):
    with pytest.raises(ChannelsMisconfigured, match=named):
        Config(**settings).check_channels()


def test_channel_settings_that_work_pass_the_start_check():
    Config().check_channels()  # the mailbox: nothing to set
    Config(notify_api_key=API_KEY, notify_email_template_id=TEMPLATE,
           notify_templates={"account_locked": LOCKED_TEMPLATE}).check_channels()


def test_two_deliverers_at_once_send_it_once_and_the_call_holds_no_lock(runtime, notify):
    message_id = write_message(runtime, key="two-deliverers")
    notify.hold = threading.Event()  # Notify is slow to answer the first
    results = []
    first = threading.Thread(target=lambda: results.append(_deliver(runtime, message_id)))
    first.start()
    try:
        _wait_for(lambda: len(notify.received) == 1, "the first deliverer reached Notify")
        # Meanwhile the second finds it claimed and leaves it, without waiting for a lock ...
        assert _deliver(runtime, message_id) == "sending"
        assert message_row(runtime, message_id).status == "sending"
        # ... and the database takes other writes (on SQLite nobody holds the write lock over the call).
        other = write_message(runtime, key="written-during-the-call")
        with runtime.db.session() as session:
            session.get(OutboxMessage, other).subject = "Changed while Notify thinks"
    finally:
        notify.hold.set()
        first.join(timeout=30)
    assert results == ["sent"]
    references = [request["body"]["reference"] for request in notify.received]
    assert references.count("two-deliverers") == 1 and notify.accepted.count("two-deliverers") == 1
    row = message_row(runtime, message_id)
    assert (row.status, row.attempts) == ("sent", 1)


def test_an_answer_that_never_came_is_asked_about_before_sending_again(runtime, notify):
    runtime.config = replace(runtime.config, channel_read_timeout_seconds=0.3)
    message_id = write_message(runtime, key="answer-lost")
    notify.hold = threading.Event()  # Notify takes the email but answers after the read timeout
    with time_machine.travel(now(), tick=False) as clock:
        with pytest.raises(DeliveryFailed, match="did not answer"):
            _deliver(runtime, message_id)
        notify.hold.set()
        _wait_for(lambda: notify.accepted == ["answer-lost"], "Notify took the email")
        row = message_row(runtime, message_id)
        assert row.status == "sending", "its outcome is unknown: the next try finds out first"
        clock.shift(row.next_attempt_at - now())
        assert _deliver(runtime, message_id) == "sent"
    assert [q.get("reference") for q in notify.lookups] == [["answer-lost"]]
    assert len(notify.received) == 1, "asked, found, not sent again"


def test_a_database_connection_cut_between_sending_and_recording_sends_once(runtime, notify):
    if not runtime.db.is_postgresql:
        pytest.skip("terminating connections: PostgreSQL")
    message_id = write_message(runtime, key="connection-cut")
    notify.on_accept = lambda: _terminate_connections(runtime)
    assert _deliver(runtime, message_id) == "sent"
    assert notify.accepted == ["connection-cut"] and len(notify.received) == 1
    assert (message_row(runtime, message_id).status, message_row(runtime, message_id).attempts) == ("sent", 1)


def test_a_database_gone_between_sending_and_recording_is_recovered_by_asking_notify(runtime, notify):
    if not runtime.db.is_postgresql:
        pytest.skip("refusing connections: PostgreSQL")
    message_id = write_message(runtime, key="database-gone")
    name = runtime.db.engine.url.database
    notify.on_accept = lambda: _terminate_connections(runtime, refuse_new=True)
    try:
        with pytest.raises(DeliveryFailed, match="was sent, but that could not be recorded"):
            _deliver(runtime, message_id)
    finally:
        _maintenance(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    notify.on_accept = None
    row = message_row(runtime, message_id)
    assert row.status == "sending" and row.next_attempt_at > now()
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        assert message_id in due_messages(runtime.db), "the sweep finds it once its claim runs out"
        assert _deliver(runtime, message_id) == "sent"
    assert len(notify.received) == 1 and [q.get("reference") for q in notify.lookups] == [["database-gone"]]
    assert message_row(runtime, message_id).attempts == 2


def _maintenance(statement: str) -> None:
    from sqlalchemy import create_engine

    from .conftest import BASE_POSTGRES_URL, normalise_url

    engine = create_engine(normalise_url(BASE_POSTGRES_URL).rsplit("/", 1)[0] + "/postgres",
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _terminate_connections(runtime, refuse_new: bool = False) -> None:
    """Every connection of the runtime's database is cut, as a database restart or a failover does."""
    name = runtime.db.engine.url.database
    if refuse_new:
        _maintenance(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _maintenance(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                 "AND pid <> pg_backend_pid()")


def _wait_for(condition, what: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)
