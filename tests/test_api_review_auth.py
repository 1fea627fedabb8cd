"""Attacker's review of the API's authentication, limits and index notices: each test proves a defect
found (fixed, or marked xfail while it remains) or pins an attack that is refused."""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from app.models import ApiToken
from tests.test_api_index import assert_problem, audited, call, register
from tests.test_api_rate_limits import assert_too_many, limited  # noqa: F401 (fixture)
from tests.test_api_tokens import TOKEN, api, ask  # noqa: F401 (fixture)

NOTICE_PATH = "/api/v1/index/notices/"


def tokens(runtime) -> list[ApiToken]:
    with runtime.db.session() as session:
        return list(session.scalars(select(ApiToken)))


def test_the_token_endpoint_holds_a_client_to_its_rate_limit(limited):
    """A client with the right secret could mint tokens without limit: each a row and an audit row."""
    app, runtime, people = limited["app"], limited["runtime"], limited["people"]
    credentials = register(runtime, people["admin"])
    assert [ask(app, credentials).status_code for _ in range(3)] == [200, 200, 200]
    assert_too_many(ask(app, credentials))
    assert len(tokens(runtime)) == 3 and len(audited(runtime, "api_token_issued")) == 3


def test_a_wrong_secret_at_the_token_endpoint_spends_nothing_of_that_clients_budget(limited):
    app, runtime, people = limited["app"], limited["runtime"], limited["people"]
    credentials = register(runtime, people["admin"])
    client_id = credentials.partition(".")[0]
    for _ in range(3):
        answer = app.test_client().post(TOKEN, data={"grant_type": "client_credentials", "client_id": client_id,
                                                     "client_secret": "guessed"},
                                        environ_base={"REMOTE_ADDR": "192.0.2.66"})
        assert_problem(answer, 401)
    assert [ask(app, credentials).status_code for _ in range(3)] == [200, 200, 200]


def test_a_token_refused_for_a_scope_the_client_lacks_is_audited(api):
    """An authenticated client asking beyond its scopes is refused (400 invalid_scope) and, as a call
    refused for its scope is, the refusal is on the audit trail."""
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read",))
    assert_problem(ask(app, credentials, {"scope": "transfers"}), 400)
    [refused] = audited(runtime, "api_token_refused")
    assert refused.detail["client"] == "Mosaic" and refused.detail["asked"] == ["transfers"]
    assert tokens(runtime) == []


@pytest.mark.parametrize("header", [
    "Basic !!!notbase64", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Basic " + base64.b64encode(b"no-colon").decode(), "Basic " + base64.b64encode(b"a" * 5000 + b":x").decode(),
    "Basic " + base64.b64encode("\u00e9\u00e9:\u00e9".encode()).decode(), "Bearer x", "Basic",
])
def test_odd_basic_credentials_at_the_token_endpoint_are_a_problem_never_a_500(api, header):
    app, runtime, people = api
    answer = app.test_client().post(TOKEN, data={"grant_type": "client_credentials"},
                                    headers={"Authorization": header})
    assert answer.status_code in (400, 401), answer.get_data(as_text=True)
    assert_problem(answer, answer.status_code)


@pytest.mark.parametrize("form", [
    {"grant_type": "client_credentials", "client_id": "a" * 100000, "client_secret": "x"},
    {"grant_type": "client_credentials" * 1000},
    {"grant_type": "client_credentials", "scope": "index:read " * 2000},
    {"grant_type": "\x00", "client_id": "\x00", "client_secret": "\x00"},
    {"grant_type": "password", "username": "a", "password": "b"},
    {"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://attacker.example"},
])
def test_odd_token_forms_are_a_problem_never_a_500(api, form):
    app, runtime, people = api
    answer = app.test_client().post(TOKEN, data=form)
    assert answer.status_code in (400, 401, 413), answer.get_data(as_text=True)
    assert_problem(answer, answer.status_code)
    assert tokens(runtime) == []


@pytest.mark.parametrize("bearer", ["\x00" * 40, "a" * 20000, "..", ".", "x.", ".x", "a.b.c", "\u00e9" * 50])
def test_odd_bearer_values_are_401_never_a_500(api, bearer):
    app, runtime, people = api
    assert_problem(call(app, bearer), 401)


def test_a_token_works_only_within_the_scope_it_was_issued_for_even_on_notices(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read", "index:notify"))
    token = ask(app, credentials, {"scope": "index:read"}).get_json()["access_token"]
    assert_problem(call(app, token, {}, path=NOTICE_PATH + "EHA-1", method="PUT"), 403)
    assert_problem(call(app, token, None, path=NOTICE_PATH + "EHA-1", method="DELETE"), 403)


def test_a_scope_refusal_with_control_characters_is_audited_without_them(api):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=("index:read",))
    assert_problem(ask(app, credentials, {"scope": "index:read\x00 transfers\x01"}), 400)
    [refused] = audited(runtime, "api_token_refused")
    assert refused.detail["asked"] == ["index:read?", "transfers?"]


def test_credentials_in_the_query_string_are_not_taken(api):
    """A secret in the URL lands in every proxy's and server's access log: only the form or Basic."""
    app, runtime, people = api
    credentials = register(runtime, people["admin"])
    client_id, _, secret = credentials.partition(".")
    answer = app.test_client().post(f"{TOKEN}?grant_type=client_credentials&client_id={client_id}"
                                    f"&client_secret={secret}")
    assert answer.status_code in (400, 401), answer.get_data(as_text=True)
    assert tokens(runtime) == []
