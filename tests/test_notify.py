"""GOV.UK Notify as the email channel, against a local HTTP server playing Notify: the client's
signed token, the template, personalisation and reference; 429 and 500 retried, 400 and 403
refused for good with Notify's reason; nothing sent twice, across retries or two deliverers."""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import jwt
import pytest
import time_machine
from sqlalchemy import func, select, text

from app.clock import now
from app.config import ChannelsMisconfigured, Config
from app.jobs.delivery import DeliveryFailed, deliver
from app.models import MailboxMessage, OutboxMessage

from .channel_servers import deliveries, message_row, write_message
from .conftest import local_http_server

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"ecaf_test-{SERVICE_ID}-{SECRET}"
TEMPLATE = "f33517ff-2a88-4f6e-b855-c550268ce08a"
LOCKED_TEMPLATE = "0a4d8c0e-3b0f-4a7e-9c1e-5d6f7a8b9c0d"
TEAM_ONLY = "Can't send to this recipient using a team-only API key"


class PlayingNotify(BaseHTTPRequestHandler):
    """POST /v2/notifications/email as Notify answers it. `server.answers` is a list of (status,
    errors, headers) to give before accepting; every request is checked and kept in `received`."""

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


@pytest.fixture(autouse=True)
def no_failing_channels():
    from app.jobs.channels import breaker

    breaker.forget_all()  # what channels failed is kept per process: each test starts afresh
    yield
    breaker.forget_all()


@pytest.fixture
def notify(runtime):
    with local_http_server(PlayingNotify) as server:
        server.answers, server.accepted, server.hold = [], [], None
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


@pytest.mark.parametrize("status, error, message", [
    (400, "BadRequestError", TEAM_ONLY),
    (403, "AuthError", "Invalid token: API key not found"),
])
def test_a_refusal_fails_the_message_with_notifys_reason_and_is_not_retried(runtime, notify, status, error, message):
    notify.answers = [(status, [{"error": error, "message": message}], {})]
    message_id = write_message(runtime, key=f"refused-{status}")
    failed_before = deliveries("email", "failed")
    assert _deliver(runtime, message_id) == "failed"
    row = message_row(runtime, message_id)
    assert row.status == "failed" and f"{error}: {message}" in row.last_error and str(status) in row.last_error
    assert deliveries("email", "failed") == failed_before + 1

    with time_machine.travel(now() + timedelta(hours=1), tick=False):
        assert _deliver(runtime, message_id) == "failed"
    assert len(notify.received) == 1 and notify.accepted == [], "never tried again by itself"


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


def test_two_deliverers_at_once_send_it_once(runtime, notify):
    if not runtime.db.is_postgresql:
        pytest.skip("row locks: PostgreSQL")
    message_id = write_message(runtime, key="two-deliverers")
    notify.hold = threading.Event()  # Notify is slow to answer the first
    results = []
    first = threading.Thread(target=lambda: results.append(_deliver(runtime, message_id)))
    first.start()
    _wait_for(lambda: len(notify.received) == 1, "the first deliverer reached Notify")
    second = threading.Thread(target=lambda: results.append(_deliver(runtime, message_id)))
    second.start()
    _wait_for(lambda: _waiting_on_a_lock(runtime), "the second deliverer waits for the message's row")
    notify.hold.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert results == ["sent", "sent"]
    assert len(notify.received) == 1 and notify.accepted == ["two-deliverers"]
    assert message_row(runtime, message_id).attempts == 1


def _waiting_on_a_lock(runtime) -> bool:
    with runtime.db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")).scalar() > 0


def _wait_for(condition, what: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)
