"""/metrics: what operators scrape, and who may scrape it.

Loopback (the test client's own address) is answered; any other address, a request that came
through a proxy, or any request when eCAF sits behind one, needs ECAF_METRICS_TOKEN, and without
it gets exactly the unknown page's 404. Figures come from every process (multiprocess files) and
from the database and Redis at scrape time, and a source that cannot be read is a scrape error.
"""
from __future__ import annotations

import hmac
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta

import pyotp
import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app import create_app
from app.clock import now
from app.config import PROJECT_ROOT, Config
from app.jobs import heartbeat
from app.models import AuditEvent, Episode, OutboxMessage
from app.web import metrics as metrics_page
from tests import journeys
from tests.conftest import REDIS_URL, TEST_AUDIT_KEY, TEST_SECRET_KEY, TEST_TOTP_KEY
from tests.web import PASSWORD, browser

TOKEN = "scrape-token-0123456789abcdef0123456789"
ELSEWHERE = "203.0.113.9"


def figures(response) -> dict:
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def _client(app, address: str | None = None):
    client = app.test_client()
    if address:
        client.environ_base["REMOTE_ADDR"] = address
    return client


def _without_nonces(response) -> str:
    return re.sub(r'nonce="[^"]*"', "", response.get_data(as_text=True))


def _audit_rows(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def _message(**fields) -> OutboxMessage:
    values = dict(channel="email", kind="test", recipient="someone@testshire.test", subject="s", body="b",
                  status="pending", attempts=0, next_attempt_at=now(), created_at=now())
    values.update(fields)
    values.setdefault("idempotency_key", f"test:{values['kind']}:{values['status']}:{id(values)}")
    return OutboxMessage(**values)


def test_loopback_scrape_counts_requests_steps_messages_and_late_deadlines(web):
    runtime, people = web["runtime"], web["people"]
    scraper = _client(web["app"])
    before = figures(scraper.get("/metrics"))

    assert scraper.get("/support").status_code == 200
    assert scraper.get("/no-such-page").status_code == 404
    episode_id = journeys.start(runtime, people)
    with runtime.db.session() as session:
        session.add(_message(kind="waiting", attempts=2, created_at=now() - timedelta(minutes=14),
                             last_error="ConnectionRefusedError: [Errno 111] Connection refused"))
        session.add(_message(kind="given_up", status="failed", attempts=6))
        session.get(Episode, episode_id).next_timer_at = now() - timedelta(
            seconds=runtime.config.sweep_interval_seconds + 30)
        pending = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending", OutboxMessage.channel == "email"))
    after = figures(scraper.get("/metrics"))

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ecaf_http_request_seconds_count", endpoint="support.index", method="GET", status="200") == 1
    # An unknown page is counted under no route: the raw path never becomes a label.
    assert grew("ecaf_http_request_seconds_count", endpoint="none", method="GET", status="404") == 1
    assert not any("no-such-page" in str(labels) for _, labels in after)
    assert grew("ecaf_step_seconds_count", kind="start", outcome="ok") == 1
    assert value(after, "ecaf_outbox_pending_messages", channel="email") == pending >= 1
    assert value(after, "ecaf_outbox_oldest_pending_seconds", channel="email") >= 14 * 60
    assert value(after, "ecaf_outbox_failed_messages", channel="email") == 1
    assert value(after, "ecaf_timers_overdue_episodes") == 1
    assert value(after, "ecaf_scrape_errors", source="database") == 0
    assert value(after, "ecaf_scrape_errors", source="redis") == 0


def test_anyone_else_gets_the_unknown_page_unless_they_bear_the_token(web):
    runtime = web["runtime"]
    app = create_app(replace(runtime.config, metrics_token=TOKEN))
    remote = _client(app, ELSEWHERE)
    rows = _audit_rows(runtime)

    unknown = remote.get("/no-such-page")
    refused = remote.get("/metrics")
    assert refused.status_code == unknown.status_code == 404
    assert _without_nonces(refused) == _without_nonces(unknown), "the same answer as a page that does not exist"
    assert "Set-Cookie" not in refused.headers, "no session is made"
    for wrong in ("Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer "):
        assert remote.get("/metrics", headers={"Authorization": wrong}).status_code == 404, wrong
    assert _audit_rows(runtime) == rows, "refusals leave no audit row"

    allowed = figures(remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}))
    assert any(name == "ecaf_http_request_seconds_count" for name, _ in allowed)
    # Without a token configured, only loopback is answered.
    open_app = create_app(replace(runtime.config, metrics_token=None))
    assert _client(open_app, ELSEWHERE).get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
    assert _client(open_app, "::1").get("/metrics").status_code == 200


def test_behind_a_proxy_loopback_proves_nothing(web):
    runtime = web["runtime"]
    proxied = create_app(replace(runtime.config, proxy_hops=1, metrics_token=TOKEN))
    local = _client(proxied)
    assert local.get("/metrics").status_code == 404, "a proxy on this host makes every client loopback"
    assert local.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 404
    assert local.get("/metrics", headers={"X-Forwarded-For": ELSEWHERE,
                                          "Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # Told of no proxy, but the request came through one all the same: loopback is the proxy's.
    unproxied = _client(create_app(replace(runtime.config, metrics_token=None)))
    assert unproxied.get("/metrics", headers={"X-Forwarded-For": ELSEWHERE}).status_code == 404
    assert unproxied.get("/metrics", headers={"Forwarded": f"for={ELSEWHERE}"}).status_code == 404
    assert unproxied.get("/metrics").status_code == 200


def test_the_token_is_compared_in_constant_time(web, monkeypatch):
    app = create_app(replace(web["runtime"].config, metrics_token=TOKEN))
    compared, real = [], hmac.compare_digest
    monkeypatch.setattr(metrics_page.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    remote = _client(app, ELSEWHERE)
    assert remote.get("/metrics", headers={"Authorization": "Bearer short"}).status_code == 404
    assert remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # Even a token of another length is compared whole, never refused early on its length.
    assert compared == [(b"short", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_the_scrape_adds_up_every_process_in_multiprocess_mode(web, tmp_path, monkeypatch):
    code = ("from app import metrics; metrics.sign_in_failed('passkey'); "
            "metrics.delivery_attempted('email', 'retry'); metrics.sweep_took(0.2)")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, check=True, timeout=120)
    assert list(tmp_path.iterdir()), "the other process wrote its figures"

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    found = figures(_client(web["app"]).get("/metrics"))
    assert value(found, "ecaf_sign_in_failures_total", kind="passkey") == 1
    assert value(found, "ecaf_outbox_deliveries_total", channel="email", result="retry") == 1
    assert value(found, "ecaf_sweep_last_finished_timestamp_seconds") > time.time() - 600
    assert value(found, "ecaf_scrape_errors", source="database") == 0, "the database figures come too"


def test_a_database_and_redis_that_cannot_be_read_are_scrape_errors_not_failures(tmp_path):
    # Nothing listens on port 1: both connections are refused.
    config = Config(database_url="postgresql://postgres@127.0.0.1:1/nothing", redis_url="redis://127.0.0.1:1/0",
                    testing=True, audit_key=TEST_AUDIT_KEY, secret_key=TEST_SECRET_KEY, totp_key=TEST_TOTP_KEY)
    app = create_app(config)
    found = figures(_client(app).get("/metrics"))
    assert value(found, "ecaf_scrape_errors", source="database") == 1
    assert value(found, "ecaf_scrape_errors", source="redis") == 1
    assert any(name == "ecaf_http_request_seconds_count" for name, _ in found), "the rest is still served"



@pytest.mark.redis
def test_workers_and_queue_depth_come_from_redis(web, redis_connection):
    from rq import Queue

    app = create_app(replace(web["runtime"].config, redis_url=REDIS_URL))
    scraper = _client(app)
    assert value(figures(scraper.get("/metrics")), "ecaf_live_workers") == 0
    heartbeat.beat(redis_connection, "host-a:101", time.time() - 30)
    heartbeat.beat(redis_connection, "host-b:202", time.time())
    queue = Queue("ecaf-depth-test", connection=redis_connection, serializer="json")
    queue.enqueue("os.getpid")
    queue.enqueue("os.getpid")
    found = figures(scraper.get("/metrics"))
    assert value(found, "ecaf_live_workers") == 2
    assert value(found, "ecaf_rq_queue_depth", queue="ecaf-depth-test") == 2
    assert value(found, "ecaf_scrape_errors", source="redis") == 0


def test_sign_in_failures_and_throttles_are_counted(web):
    app, secret = web["app"], web["secrets"]["originator"]
    scraper = _client(app)
    before = figures(scraper.get("/metrics"))
    guesser = browser(app)
    for _ in range(3):
        guesser.post("/sign-in", {"username": "olive", "password": "not the password at all"})
    waited = guesser.post("/sign-in", {"username": "olive", "password": "not the password at all"})
    assert "Wait" in waited.get_data(as_text=True)
    with time_machine.travel(now() + timedelta(seconds=31)):  # past the wait: the right password goes through
        assert guesser.post("/sign-in", {"username": "olive", "password": PASSWORD}).status_code == 302
        wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        assert "Enter the 6-digit code" in guesser.post("/sign-in/code", {"code": wrong}).get_data(as_text=True)
    after = figures(scraper.get("/metrics"))

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ecaf_sign_in_failures_total", kind="password") == 3
    assert grew("ecaf_sign_in_throttled_total", counter="name") == 1
    assert grew("ecaf_sign_in_failures_total", kind="code") == 1
