"""Structured logs: one JSON line per request, carrying the request id that the response header, the
audit rows and the outbox messages of the same request carry, and never a child's details."""
from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import audit, create_app, logs, outbox, request_ids
from app.clock import now
from app.models import AuditEvent, Child, OutboxMessage, Organisation
from tests import journeys
from tests.web import browser

# A child no other test has, so that any trace of her in a log line is this test's search.
GIVEN, FAMILY, BORN = "Zephyrine", "Quillfeather", date(2014, 3, 9)


@pytest.fixture
def log_lines():
    """Every log line written while the test runs, as eCAF writes them in production (JSON)."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure(json=True, stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def _requests(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "ecaf.request"]


def _signed_in(web, who: str):
    client = browser(web["app"])
    client.sign_in({"originator": "olive", "lead": "leah", "admin": "adam"}[who], web["secrets"][who])
    return client


def test_a_search_of_the_index_leaves_one_line_with_its_request_id_and_no_child_details(web, log_lines):
    runtime, people = web["runtime"], web["people"]
    with runtime.db.session() as session:
        session.add(Child(given_names=GIVEN, family_name=FAMILY, date_of_birth=BORN, postcode="TE9 9ZZ",
                          address="9 Quiet Lane", home_authority_id=people["authority"], created_at=now()))
    olive = _signed_in(web, "originator")
    form = {"given_names": GIVEN, "family_name": FAMILY, "date_of_birth-day": "9", "date_of_birth-month": "3",
            "date_of_birth-year": "2014", "postcode": "TE9 9ZZ", "reason": "Joined our school this week"}
    searched = olive.post(f"/index?family_name={FAMILY}&dob=2014-03-09", form)
    assert searched.status_code == 200
    request_id = searched.headers["X-Request-Id"]

    lines = log_lines()
    [line] = [line for line in _requests(lines) if line["request_id"] == request_id]
    assert line["method"] == "POST" and line["endpoint"] == "national_index.search" and line["status"] == 200
    assert line["user_id"] == people["originator"] and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["message"] == "request" and line["time"].endswith("+00:00")
    with runtime.db.session() as session:
        [searched_row] = session.scalars(select(AuditEvent).where(AuditEvent.action == "index_searched")).all()
    assert searched_row.detail["request_ref"] == request_id

    written = "\n".join(json.dumps(line) for line in lines)
    for secret in (GIVEN, FAMILY, "2014-03-09", "09/03/2014", "TE9 9ZZ", "Joined our school", "family_name=",
                   "Olive Origin", "dob="):
        assert secret not in written, f"{secret!r} is in a log line"
    assert len({line["request_id"] for line in _requests(lines)}) == len(_requests(lines)), "an id per request"


def test_the_request_id_comes_from_a_trusted_proxy_only(web):
    plain = web["app"].test_client()
    mine = plain.get("/support", headers={"X-Request-Id": "made-up-by-a-client-123"}).headers["X-Request-Id"]
    assert mine != "made-up-by-a-client-123" and request_ids.acceptable(mine), "no proxy is trusted: a new id"

    proxied = create_app(replace(web["runtime"].config, proxy_hops=1)).test_client()
    assert proxied.get("/support", headers={"X-Request-Id": "edge-0123456789"}).headers["X-Request-Id"] \
        == "edge-0123456789"
    for unsafe in ("short", "has spaces in it", "x" * 65, 'quote"injected"here', "tab\tbreak-012345"):
        answered = proxied.get("/support", headers={"X-Request-Id": unsafe}).headers["X-Request-Id"]
        assert answered != unsafe and request_ids.acceptable(answered), unsafe
    assert request_ids.current() is None, "the id is the request's only"


def test_a_request_refused_before_its_page_still_gets_an_id_and_a_line(web, log_lines):
    refused = web["app"].test_client().post("/sign-in", data={"username": "olive"})  # no CSRF token
    assert refused.status_code == 400
    [line] = _requests(log_lines())
    assert line["request_id"] == refused.headers["X-Request-Id"] and line["status"] == 400
    assert line["endpoint"] == "auth.sign_in" and line["user_id"] is None


def test_outbox_messages_carry_the_request_id_of_the_request_or_job_that_wrote_them(web):
    runtime, people = web["runtime"], web["people"]
    with runtime.db.session() as session:
        school = session.scalar(select(Organisation.id))
    applicant = browser(web["app"])
    applied = applicant.post("/apply", {
        "full_name": "Andy Applicant", "email": "andy.applicant@testshire.test", "job_title": "School nurse",
        "phone": "0100 000 555", "organisation_id": str(school), "manager_name": "Mary Manager",
        "manager_email": "mary.manager@testshire.test", "reason": "I support children at the school"})
    assert applied.status_code == 200
    request_id = applied.headers["X-Request-Id"]
    with runtime.db.session() as session:
        [email] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "account_application_received"))
        [row] = session.scalars(select(AuditEvent).where(AuditEvent.action == "account_applied"))
    assert email.request_id == row.detail["request_ref"] == request_id

    # A step's messages: under a job's id, as the workers run them.
    with request_ids.bound("job-0123456789abcdef"):
        journeys.to_review(runtime, people)
    with runtime.db.session() as session:
        [appointed] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "lead_professional_appointed"))
    assert appointed.request_id == "job-0123456789abcdef"
    # Outside any request or job (a command, a test) nothing is made up.
    with runtime.db.session() as session:
        plain = outbox.queue_email(session, kind="by_hand", recipient="x@testshire.test", subject="s", body="b",
                                   key="by-hand:1")
        row = audit.record(session, "by_hand")
    assert plain.request_id is None and row.detail is None


def test_a_line_holds_the_event_fields_and_the_request_id_and_no_statement_values():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("ecaf.test-structured")
    log.addHandler(handler)
    log.propagate, log.level = False, logging.INFO
    try:
        with request_ids.bound("job-feedfacefeedface"):
            log.info("step", extra={"event": {"kind": "wake", "episode_id": 7, "outcome": "ok", "seconds": 0.25,
                                              "level": "overwrite attempt"}})
            try:
                raise IntegrityError("INSERT INTO child (given_names) VALUES (?)", (GIVEN,), Exception("UNIQUE"))
            except IntegrityError:
                log.exception("failed")
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    step, failed, outside = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert step == {"time": step["time"], "level": "info", "logger": "ecaf.test-structured", "message": "step",
                    "request_id": "job-feedfacefeedface", "kind": "wake", "episode_id": 7, "outcome": "ok",
                    "seconds": 0.25}
    assert "IntegrityError" in failed["error"] and GIVEN not in failed["error"], "the statement's values stay out"
    assert "request_id" not in outside


def test_json_unless_told_text_or_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert logs.wants_json({}, io.StringIO()) is True, "a service manager or a pipe gets JSON"
    assert logs.wants_json({}, Terminal()) is False
    assert logs.wants_json({"ECAF_LOG_FORMAT": "json"}, Terminal()) is True
    assert logs.wants_json({"ECAF_LOG_FORMAT": "TEXT"}, io.StringIO()) is False
    with pytest.raises(ValueError, match="ECAF_LOG_FORMAT must be json or text"):
        logs.wants_json({"ECAF_LOG_FORMAT": "xml"}, io.StringIO())


def test_configure_replaces_its_own_handler_and_drops_the_development_servers_request_lines(monkeypatch):
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    monkeypatch.setenv("ECAF_LOG_FORMAT", "xml")
    stream = io.StringIO()
    try:
        logs.configure(stream=io.StringIO())
        handler = logs.configure(stream=stream)  # a second call replaces the first
        assert [h for h in root.handlers if getattr(h, "ecaf", False)] == [handler]
        logging.getLogger("werkzeug").info('127.0.0.1 - - [01/Jan/2026 10:00:00] "GET /children/find?'
                                           f'family_name={FAMILY} HTTP/1.1" 200 -')
        logging.getLogger("werkzeug").info(" * Running on http://127.0.0.1:5000")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "ECAF_LOG_FORMAT must be json or text" in lines[0]["message"], "a wrong setting is named, not fatal"
    assert [line["message"] for line in lines[1:]] == [" * Running on http://127.0.0.1:5000"]
    assert FAMILY not in stream.getvalue()
    assert root.handlers == before, "other handlers (the test runner's) are left alone"


def test_postgresqls_detail_lines_never_carry_a_rows_values_into_a_line():
    import psycopg

    from tests.conftest import POSTGRES_URL, unavailable

    try:
        connection = psycopg.connect(POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable: {type(exc).__name__}")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("ecaf.test-row-values")
    log.addHandler(handler)
    log.propagate = False
    try:
        with connection:
            connection.execute("CREATE TEMP TABLE child_names (name text UNIQUE, born date NOT NULL)")
            connection.execute("INSERT INTO child_names VALUES (%s, %s)", (FAMILY, BORN))
            for statement, values in (("INSERT INTO child_names VALUES (%s, %s)", (FAMILY, BORN)),  # Key (name)=
                                      ("INSERT INTO child_names VALUES (%s, NULL)", (GIVEN,))):  # Failing row
                try:
                    with connection.transaction():
                        connection.execute(statement, values)
                except psycopg.Error as error:
                    assert FAMILY in str(error) or GIVEN in str(error), "PostgreSQL does name the values"
                    log.error("saving failed: %s", error, exc_info=True)
    finally:
        log.removeHandler(handler)
        connection.close()
    written = stream.getvalue()
    assert len(written.splitlines()) == 2 and "values hidden" in written
    assert FAMILY not in written and GIVEN not in written and "2014-03-09" not in written


def test_a_proxys_request_id_is_kept_only_when_all_of_it_is_plain():
    assert request_ids.acceptable("edge-3f2a9c1b") == "edge-3f2a9c1b"
    for forged in ("abcdefgh\n", "abcdefgh\nlevel=error", "short", "x" * 65, "spaced id 1234", None, ""):
        assert request_ids.acceptable(forged) is None, forged
