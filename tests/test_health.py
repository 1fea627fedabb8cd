"""/healthz (the process answers) and /readyz (it can do its work): each failing reason, on real
databases and a real Redis; public, cookie-free, unaudited, and silent about hosts and URLs."""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace

import pytest
import time_machine
from sqlalchemy import func, select, text

from app import create_app
from app.config import Config
from app.db import Database
from app.jobs import heartbeat
from app.migrate import upgrade
from app.models import AuditEvent, WebSession
from app.web import health

from .conftest import REDIS_URL, TEST_AUDIT_KEY, TEST_SECRET_KEY, TEST_TOTP_KEY


@pytest.fixture(autouse=True)
def fresh_answers(monkeypatch):
    """Every probe computes its answer: the tests change the world between two probes."""
    monkeypatch.setattr(health, "READINESS_TTL_SECONDS", 0.0)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config_for(database_url: str, **overrides) -> Config:
    return Config(database_url=database_url, testing=True, audit_key=TEST_AUDIT_KEY, secret_key=TEST_SECRET_KEY,
                  totp_key=TEST_TOTP_KEY, **overrides)


def probe(app, path: str = "/readyz"):
    response = app.test_client().get(path)
    return response, response.get_json()


def failing(body: dict) -> dict[str, str]:
    return {name: check["reason"] for name, check in body["checks"].items() if check["status"] == "failing"}



def test_liveness_answers_without_touching_the_database():
    # Nothing listens there: a liveness probe that asked the database would fail, and get healthy
    # web processes restarted during a database outage.
    app = create_app(config_for(f"postgresql://ecaf@127.0.0.1:{closed_port()}/ecaf"))
    response, body = probe(app, "/healthz")
    assert response.status_code == 200 and body == {"status": "ok"}
    assert "Set-Cookie" not in response.headers


def test_ready_on_a_migrated_database_without_redis(runtime):
    app = create_app(runtime.config)
    with runtime.db.session() as session:
        audited = session.scalar(select(func.count()).select_from(AuditEvent))
    response, body = probe(app)
    assert response.status_code == 200, body
    assert body == {"status": "ready", "checks": {
        "database": {"status": "ok"}, "migrations": {"status": "ok"},
        "workers": {"status": "ok", "reason": "no Redis: background jobs run in the web process"}}}
    # Probes every few seconds must leave no trace: no cookie, no session row, no audit row.
    assert "Set-Cookie" not in response.headers and response.headers["Cache-Control"] == "no-store"
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WebSession)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == audited


def test_a_database_that_does_not_answer_is_not_ready_and_nothing_says_where_it_is():
    port = closed_port()
    app = create_app(config_for(f"postgresql://ecaf:hunter2-password@127.0.0.1:{port}/ecaf_live"))
    response, body = probe(app)
    assert response.status_code == 503 and body["status"] == "not ready"
    assert failing(body) == {"database": "does not answer",
                             "migrations": "not checked: the database does not answer"}
    raw = response.get_data(as_text=True)
    for secret in ("127.0.0.1", str(port), "hunter2", "ecaf_live", "postgresql"):
        assert secret not in raw


def _older_revision() -> str:
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return scripts.get_revision(scripts.get_current_head()).down_revision


def test_a_database_behind_the_code_is_not_ready_until_upgraded(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url, _older_revision())
    app = create_app(config_for(url))
    response, body = probe(app)
    assert response.status_code == 503
    assert failing(body) == {"migrations": "the database is behind this code's migrations: run `ecaf db upgrade`"}
    upgrade(url)
    assert probe(app)[0].status_code == 200


def test_a_database_without_schema_or_migrated_by_a_newer_release_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    app = create_app(config_for(url))
    response, body = probe(app)
    assert response.status_code == 503
    assert failing(body) == {"migrations": "the database has no schema: run `ecaf db upgrade`"}
    upgrade(url)
    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    db.dispose()
    response, body = probe(app)
    assert response.status_code == 503
    assert failing(body) == {"migrations": "the database is at a migration this code does not know: a newer "
                                           "release migrated it"}


def test_redis_that_does_not_answer_is_not_ready(runtime):
    port = closed_port()
    app = create_app(replace(runtime.config, redis_url=f"redis://:s3cret@127.0.0.1:{port}/1"))
    response, body = probe(app)
    assert response.status_code == 503
    assert failing(body) == {"redis": "does not answer", "workers": "not checked: Redis does not answer"}
    assert body["checks"]["database"] == {"status": "ok"}
    raw = response.get_data(as_text=True)
    assert str(port) not in raw and "s3cret" not in raw


@pytest.mark.redis
def test_with_redis_readiness_needs_a_worker_that_beat_in_the_last_minute(runtime, redis_connection):
    app = create_app(replace(runtime.config, redis_url=REDIS_URL))
    response, body = probe(app)
    assert response.status_code == 503
    assert failing(body) == {"workers": "no worker has reported in the last 60 seconds: deadlines and messages are "
                                        "not being processed (start `ecaf worker`)"}
    assert body["checks"]["redis"] == {"status": "ok"}

    # A worker that beat two minutes ago (its key not yet expired) has died as far as anyone can tell.
    with time_machine.travel(time.time() - 120, tick=False):
        heartbeat.beat(redis_connection, "web-host:4242", time.time())
    assert probe(app)[0].status_code == 503

    # One that beats while its deadline loop has got nowhere for five minutes is stuck: not ready either.
    heartbeat.beat(redis_connection, "web-host:4545", time.time() - 3600, timer_poll=1.0, timers_at=time.time() - 300)
    response, body = probe(app)
    assert response.status_code == 503 and "deadline loop gets nowhere" in failing(body)["workers"], body
    redis_connection.delete(heartbeat.PREFIX + "web-host:4545")

    heartbeat.beat(redis_connection, "web-host:4343", time.time())
    response, body = probe(app)
    assert response.status_code == 200, body
    assert body["checks"]["workers"] == {"status": "ok", "live": 1}
    assert "web-host" not in response.get_data(as_text=True)  # worker names carry host names


@pytest.mark.redis
def test_a_flood_of_probes_costs_one_check_a_moment(runtime, redis_connection, monkeypatch):
    monkeypatch.setattr(health, "READINESS_TTL_SECONDS", 3600.0)
    app = create_app(replace(runtime.config, redis_url=REDIS_URL))
    assert probe(app)[0].status_code == 503
    heartbeat.beat(redis_connection, "web-host:1", time.time())
    assert probe(app)[0].status_code == 503, "the answer of a moment ago is reused"
    monkeypatch.setattr(health, "READINESS_TTL_SECONDS", 0.0)
    assert probe(app)[0].status_code == 200


def test_probes_need_no_sign_in_and_answer_json(runtime):
    app = create_app(runtime.config)
    for path in ("/healthz", "/readyz"):
        response = app.test_client().get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200 and response.mimetype == "application/json"
        json.loads(response.get_data(as_text=True))
    assert app.test_client().post("/readyz").status_code == 405


def test_while_one_probe_waits_on_a_stalled_check_the_others_answer_what_it_found_last(runtime):
    app = create_app(runtime.config)
    assert probe(app)[0].status_code == 200
    state = app.extensions["ecaf_readiness"]
    state["checks"] = {"database": health.Check(False, "does not answer")}  # what the last probe found
    answers = []
    with state["lock"]:  # another probe is finding out, held up by a stalled database
        other = threading.Thread(target=lambda: answers.append(probe(app)))
        other.start()
        other.join(timeout=60)  # a bound to fail rather than hang, not a timing
        assert not other.is_alive(), "a probe waited for another's check instead of answering"
    response, body = answers[0]
    assert response.status_code == 503 and failing(body) == {"database": "does not answer"}
