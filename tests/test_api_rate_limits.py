"""Rate limits of the JSON API: per authenticated client (nobody spends another client's budget), per
address for failing credentials (secrets cannot be tried fast), 429 problem details with Retry-After,
refusals audited once a minute, counts shared through Redis, and a Redis outage that breaks nothing.
The clock is moved with time_machine; nothing sleeps."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine

from app import create_app
from app.api import rate_limits
from app.api.rate_limits import RateLimits, parse_limit
from app.clock import now
from app.config import Config
from tests.conftest import REDIS_URL
from tests.test_api_index import assert_problem, audited, call, register

LIMIT = "3/minute"


@pytest.fixture
def limited(runtime, people):
    app = create_app(replace(runtime.config, api_rate_limit=LIMIT, api_failed_credentials_limit=LIMIT))
    return {"app": app, "runtime": runtime, "people": people}


def calls(app, credentials, count: int, **extra) -> list:
    return [call(app, credentials, **extra) for _ in range(count)]


def assert_too_many(answer) -> int:
    body = assert_problem(answer, 429)
    wait = int(answer.headers["Retry-After"])
    assert 1 <= wait <= 60 and f"{wait} seconds" in body["detail"]
    return wait


def test_a_client_over_its_limit_is_refused_with_retry_after_until_the_window_moves(limited):
    app, runtime, people = limited["app"], limited["runtime"], limited["people"]
    credentials = register(runtime, people["admin"])
    start = now()
    with time_machine.travel(start, tick=False):
        assert [answer.status_code for answer in calls(app, credentials, 3)] == [200, 200, 200]
    with time_machine.travel(start + timedelta(seconds=20), tick=False):
        refused = call(app, credentials)
        assert assert_too_many(refused) == 40  # the first call leaves the minute 40 seconds from now
        assert "3 calls a minute" in refused.get_json()["detail"]
        assert_too_many(call(app, credentials))
    assert len(audited(runtime, "index_searched")) == 3 and len(audited(runtime, "api_called")) == 3
    [limited_event] = audited(runtime, "api_rate_limited")  # once a minute, not once per refused call
    assert limited_event.detail["client"] == "Mosaic" and limited_event.detail["retry_after"] == 40
    assert limited_event.detail["limit"] == "3 calls a minute"
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert call(app, credentials).status_code == 200


def test_each_client_has_its_own_budget(limited):
    app, runtime, people = limited["app"], limited["runtime"], limited["people"]
    first, second = register(runtime, people["admin"]), register(runtime, people["admin"], name="Liquidlogic")
    calls(app, first, 3)
    assert_too_many(call(app, first))
    assert call(app, second).status_code == 200


def test_a_wrong_secret_with_a_clients_id_spends_nothing_of_that_clients_budget(limited):
    app, runtime, people = limited["app"], limited["runtime"], limited["people"]
    credentials = register(runtime, people["admin"])
    client_id = credentials.partition(".")[0]
    for answer in calls(app, f"{client_id}.guessed", 3, environ_base={"REMOTE_ADDR": "192.0.2.66"}):
        assert_problem(answer, 401)
    assert [answer.status_code for answer in calls(app, credentials, 3)] == [200, 200, 200]
    assert audited(runtime, "api_rate_limited") == []


def test_an_address_sending_failing_credentials_gets_429_but_valid_credentials_still_pass(limited):
    app, runtime, people = limited["app"], limited["runtime"], limited["people"]
    credentials = register(runtime, people["admin"])
    guesser = {"REMOTE_ADDR": "192.0.2.66"}
    start = now()
    with time_machine.travel(start, tick=False):
        for answer in calls(app, "unknown.secret", 3, environ_base=guesser):
            assert_problem(answer, 401)
        assert_too_many(call(app, "unknown.secret", environ_base=guesser))
        assert_too_many(call(app, f"{credentials.partition('.')[0]}.wrong", environ_base=guesser))
        # A client sharing the guesser's address (a council's exit, a proxy) is not locked out by it.
        assert call(app, credentials, environ_base=guesser).status_code == 200
        assert call(app, credentials, environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert len(audited(runtime, "api_called")) == 2 and audited(runtime, "api_rate_limited") == []
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert call(app, credentials, environ_base=guesser).status_code == 200


def test_the_refusal_is_described_in_the_document(limited):
    document = limited["app"].test_client().get("/api/v1/openapi.json").get_json()
    for operations in document["paths"].values():
        for operation in operations.values():
            too_many = operation["responses"]["429"]
            assert too_many["headers"]["Retry-After"]["required"] is True
            assert "application/problem+json" in too_many["content"]
            expected = {"400", "413", "415", "500", "503"} | ({"401", "403"} if operation.get("security") else {"401"})
            assert expected <= set(operation["responses"])


@pytest.mark.parametrize("setting", ["api_rate_limit", "api_failed_credentials_limit"])
def test_a_malformed_limit_stops_the_start_naming_its_setting(runtime, setting):
    with pytest.raises(ValueError, match="ECAF_API_"):
        create_app(replace(runtime.config, **{setting: "lots"}))
    with pytest.raises(ValueError):
        parse_limit("ECAF_API_RATE_LIMIT", "0/minute")


def test_the_limits_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ECAF_API_RATE_LIMIT", "600/hour")
    config = Config.from_env()
    assert config.api_rate_limit == "600/hour" and config.api_failed_credentials_limit == "20/minute"


# ---------------------------------------------------------------- Redis

def _with_limits(app, redis_url: str) -> None:
    app.extensions[rate_limits.EXTENSION] = RateLimits(parse_limit("", LIMIT), parse_limit("", LIMIT), redis_url)


@pytest.mark.redis
def test_web_processes_share_one_count_through_redis(runtime, people, redis_connection):
    one, other = create_app(runtime.config), create_app(runtime.config)
    _with_limits(one, REDIS_URL)
    _with_limits(other, REDIS_URL)
    credentials = register(runtime, people["admin"])
    start = now()
    with time_machine.travel(start, tick=False):
        assert [call(app, credentials).status_code for app in (one, other, one)] == [200, 200, 200]
        assert assert_too_many(call(other, credentials)) == 60
        assert any(key.startswith(b"LIMITS") for key in redis_connection.keys())
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert call(other, credentials).status_code == 200


def test_with_redis_unreachable_the_limits_are_counted_in_memory_and_calls_go_on(runtime, people, caplog):
    app = create_app(runtime.config)
    _with_limits(app, "redis://127.0.0.1:9/0")  # nothing listens on the discard port
    credentials = register(runtime, people["admin"])
    with caplog.at_level(logging.WARNING, logger="app.api.rate_limits"):
        assert [answer.status_code for answer in calls(app, credentials, 3)] == [200, 200, 200]
        assert_too_many(call(app, credentials))
    lost = [record for record in caplog.records if "Redis cannot be reached" in record.getMessage()]
    assert len(lost) == 1  # Redis is left alone for a while, not tried (and logged) on every call
    assert len(audited(runtime, "api_called")) == 3


def test_a_redis_that_comes_back_is_used_again(runtime, people, monkeypatch):
    limits = RateLimits(parse_limit("", LIMIT), parse_limit("", LIMIT), "redis://127.0.0.1:9/0")
    assert limits.client_wait("abc") is None  # counted in memory: Redis is away
    assert limits._redis_failed_at is not None and not limits._redis_usable()
    monkeypatch.setattr(rate_limits, "REDIS_RETRY_SECONDS", 0)
    assert limits._redis_usable() and limits._redis_failed_at is None
