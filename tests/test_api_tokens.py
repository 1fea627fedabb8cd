"""OAuth 2 client credentials: a client trades its id and secret for a short-lived token carrying the
scopes it asked for; the token works like the credentials, within those scopes, until it expires or
the client is revoked."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.clock import now
from app.models import ApiClient, ApiToken, User
from app.services import api_clients
from tests.test_api_index import assert_problem, audited, call, register
from tests.web import make_app

TOKEN = "/api/v1/oauth/token"


def basic(credentials: str) -> dict:
    client_id, _, secret = credentials.partition(".")
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def ask(app, credentials: str | None, form: dict | None = None, *, in_form: bool = False):
    form = {"grant_type": "client_credentials", **(form or {})}
    headers = {}
    if credentials and in_form:
        form["client_id"], _, form["client_secret"] = credentials.partition(".")
    elif credentials:
        headers = basic(credentials)
    return app.test_client().post(TOKEN, data=form, headers=headers)


def tokens(runtime) -> list[ApiToken]:
    with runtime.db.session() as session:
        return list(session.scalars(select(ApiToken)))


@pytest.fixture
def api(runtime, people):
    return make_app(runtime), runtime, people


def test_a_token_for_the_credentials_searches_the_index_and_is_stored_only_as_a_hash(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read", "reports:read"))
    answer = ask(app, credentials)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store" and "Set-Cookie" not in answer.headers
    token = answer.get_json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 900
    assert token["scope"] == "index:read reports:read" and "." not in token["access_token"]
    [row] = tokens(runtime)
    assert token["access_token"] not in (row.token_hash, row.scope_list) and len(row.token_hash) == 64
    [issued] = audited(runtime, "api_token_issued")
    assert issued.detail["client"] == "Mosaic" and issued.detail["scopes"] == ["index:read", "reports:read"]
    assert call(app, token["access_token"]).status_code == 200
    [called] = audited(runtime, "api_called")
    assert called.detail["client"] == "Mosaic" and called.detail["allowed"] is True


def test_credentials_in_the_form_work_as_http_basic_does(api):
    app, runtime, people = api
    answer = ask(app, register(runtime, people["admin"]), in_form=True)
    assert answer.status_code == 200 and answer.get_json()["scope"] == "index:read"


def test_a_token_carries_only_the_scopes_asked_for(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read", "reports:read"))
    token = ask(app, credentials, {"scope": "reports:read"}).get_json()
    assert token["scope"] == "reports:read"
    body = assert_problem(call(app, token["access_token"]), 403)
    assert "index:read" in body["detail"]
    [called] = audited(runtime, "api_called")
    assert called.detail["allowed"] is False


def test_a_scope_the_client_lacks_is_refused_and_nothing_is_issued(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read",))
    for scope in ("transfers", "index:read transfers", "admin", "index:read\x00"):
        body = assert_problem(ask(app, credentials, {"scope": scope}), 400)
        assert body["error"] == "invalid_scope" and body["error_description"]
    assert tokens(runtime) == [] and audited(runtime, "api_token_issued") == []


def test_wrong_unknown_revoked_and_expired_clients_get_invalid_client(api):
    app, runtime, people = api
    good = register(runtime, people["admin"])
    revoked = register(runtime, people["admin"], name="Gone")
    expiring = register(runtime, people["admin"], days=1, name="Old")
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Gone"))
        api_clients.revoke(session, session.get(User, people["admin"]), row.id, "Contract ended")
    client_id = good.partition(".")[0]
    answers = [ask(app, credentials) for credentials in (f"{client_id}.wrong", "unknown.secret", revoked,
                                                          f"{client_id}\x00.secret", "\x00" * 30 + ".x")]
    answers.append(app.test_client().post(TOKEN, data={"grant_type": "client_credentials", "client_id": "a\x00b",
                                                       "client_secret": "x"}))
    answers.append(ask(app, None))
    answers.append(ask(app, f"{client_id}.wrong", in_form=True))
    with time_machine.travel(now() + timedelta(days=3)):
        answers.append(ask(app, expiring))
    bodies = [assert_problem(answer, 401) for answer in answers]
    assert all(body == bodies[0] for body in bodies) and bodies[0]["error"] == "invalid_client"
    assert all(answer.headers["WWW-Authenticate"].startswith("Basic") for answer in answers)
    assert tokens(runtime) == []


def test_other_grant_types_are_unsupported(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"])
    for grant in ("password", "authorization_code", "refresh_token", ""):
        body = assert_problem(ask(app, credentials, {"grant_type": grant}), 400)
        assert body["error"] in ("unsupported_grant_type", "invalid_request")
    assert tokens(runtime) == []


def test_a_token_ends_after_fifteen_minutes_and_with_its_client(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"])
    first = ask(app, credentials).get_json()["access_token"]
    with time_machine.travel(now() + timedelta(minutes=16)):
        assert_problem(call(app, first), 401)
        second = ask(app, credentials).get_json()["access_token"]
        # The expired token was deleted as the new one was issued: the table holds live tokens only.
        assert len(tokens(runtime)) == 1
        assert call(app, second).status_code == 200
        with runtime.db.session() as session:
            row = session.scalar(select(ApiClient))
            api_clients.revoke(session, session.get(User, people["admin"]), row.id, "Contract ended")
        assert_problem(call(app, second), 401)


def test_a_token_loses_a_scope_its_client_no_longer_holds(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read", "reports:read"))
    token = ask(app, credentials).get_json()["access_token"]
    with runtime.db.session() as session:
        session.scalar(select(ApiClient)).scope_list = "reports:read"
    assert_problem(call(app, token), 403)


def test_forged_tokens_are_refused_alike(api):
    app, runtime, people = api
    register(runtime, people["admin"])
    for forged in ("x" * 42, "x" * 5000, "\u00e9" * 10):
        assert_problem(call(app, forged), 401)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_the_document_describes_the_token_endpoint_and_the_oauth_scheme(api):
    app, _, _ = api
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    scheme = document["components"]["securitySchemes"]["oauth"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == TOKEN
    operation = document["paths"][TOKEN]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/x-www-form-urlencoded"}
    assert {"200", "400", "401"} <= set(operation["responses"])
    assert set(operation["responses"]["401"]["content"]) == {"application/problem+json"}


def test_a_field_sent_twice_is_invalid_request(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"])
    answer = app.test_client().post(TOKEN, data="grant_type=client_credentials&grant_type=password",
                                    headers=basic(credentials), content_type="application/x-www-form-urlencoded")
    body = assert_problem(answer, 400)
    assert body["error"] == "invalid_request" and tokens(runtime) == []
