"""The JSON API: client credentials on every call, scopes, the index query as *Is there a CAF?*
answers it, problem details for every error, and the OpenAPI 3.1 document."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.clock import now
from app.models import API_SCOPES, ApiClient, AuditEvent, Child, User
from app.services import api_clients
from tests.conftest import other_authority
from tests.journeys import to_delivery
from tests.web import make_app

REASON = "Checking before a referral to family support"
SEARCH = {"family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST", "reason": REASON}
PATH = "/api/v1/index/search"


def register(runtime, user_id: int, scopes=("index:read",), days: int = 30, name: str = "Mosaic") -> str:
    with runtime.db.session() as session:
        made = api_clients.register(session, session.get(User, user_id), name=name, scopes=list(scopes),
                                    expires_on=api_clients.today() + timedelta(days=days))
        return made.credentials


def call(app, credentials: str | None, body=SEARCH, *, path=PATH, method="POST", **extra):
    headers = {"Authorization": f"Bearer {credentials}"} if credentials else {}
    data = json.dumps(body) if not isinstance(body, (str, bytes)) else body
    return app.test_client().open(path, method=method, data=data, headers=headers,
                                  content_type=extra.pop("content_type", "application/json"), **extra)


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert "Set-Cookie" not in response.headers
    return body


@pytest.fixture
def api(runtime, people):
    return {"app": make_app(runtime), "runtime": runtime, "people": people}


# ---------------------------------------------------------------- the happy path

def test_a_client_with_index_read_finds_the_caf_and_only_what_the_web_search_shows(api):
    runtime, people = api["runtime"], api["people"]
    to_delivery(runtime, people)
    credentials = register(runtime, people["admin"])
    answer = call(api["app"], credentials)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    [result] = answer.get_json()["results"]
    assert result["match"] == "exact" and result["status"] == "open" and result["home_authority"] == "Testshire"
    assert result["contact"]["name"] == "Olive Origin" and result["postcode_district"] == "TE1"
    assert set(result) == {"match", "near_because", "family_name", "date_of_birth", "postcode_district",
                           "home_authority", "status", "last_updated", "contact", "matched_on_nhs_number", "source"}
    [searched] = audited(runtime, "index_searched")
    assert searched.actor_id is None and searched.detail["client"] == "Mosaic"
    assert searched.detail["reason"] == REASON and searched.detail["results"] == 1
    [called] = audited(runtime, "api_called")
    assert called.detail["client"] == "Mosaic" and called.detail["allowed"] is True


def test_a_shielded_child_is_left_out_as_for_a_practitioner(api):
    runtime, people = api["runtime"], api["people"]
    to_delivery(runtime, people)
    with runtime.db.session() as session:
        session.get(Child, people["child"]).shielded = True
    answer = call(api["app"], register(runtime, people["admin"]))
    assert answer.status_code == 200 and answer.get_json()["results"] == []


def test_a_search_matching_nothing_answers_an_empty_list(api):
    runtime, people = api["runtime"], api["people"]
    answer = call(api["app"], register(runtime, people["admin"]), {**SEARCH, "family_name": "Nobody",
                                                                   "postcode": "ZZ1 1ZZ"})
    assert answer.status_code == 200 and answer.get_json() == {"results": []}


# ---------------------------------------------------------------- credentials and scopes

@pytest.mark.parametrize("scope", API_SCOPES)
def test_only_the_index_read_scope_may_search(api, scope):
    runtime, people = api["runtime"], api["people"]
    answer = call(api["app"], register(runtime, people["admin"], scopes=(scope,)))
    if scope == "index:read":
        assert answer.status_code == 200
    else:
        assert "index:read" in assert_problem(answer, 403)["detail"]
        [called] = audited(runtime, "api_called")
        assert called.detail["allowed"] is False and called.detail["client"] == "Mosaic"
    assert len(audited(runtime, "index_searched")) == (scope == "index:read")


def test_unknown_wrong_expired_and_revoked_credentials_get_the_same_401(api):
    runtime, people = api["runtime"], api["people"]
    good = register(runtime, people["admin"])
    client_id = good.partition(".")[0]
    expiring = register(runtime, people["admin"], days=1, name="Old")
    revoked = register(runtime, people["admin"], name="Gone")
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Gone"))
        api_clients.revoke(session, session.get(User, people["admin"]), row.id, "Contract ended")
    answers = [call(api["app"], credentials) for credentials in
               (None, "nonsense", "unknown.secret", f"{client_id}.wrong", f"{client_id}.", revoked)]
    with time_machine.travel(now() + timedelta(days=3)):
        answers.append(call(api["app"], expiring))
    bodies = [assert_problem(answer, 401) for answer in answers]
    assert all(body == bodies[0] for body in bodies)
    assert all(answer.headers["WWW-Authenticate"].startswith("Bearer") for answer in answers)
    assert audited(runtime, "index_searched") == [] and audited(runtime, "api_called") == []
    assert call(api["app"], good).status_code == 200


def test_a_session_cookie_is_neither_read_nor_needed(api):
    runtime, people = api["runtime"], api["people"]
    client = api["app"].test_client()
    client.set_cookie("ecaf-session", "forged")
    answer = client.post(PATH, json=SEARCH)
    assert_problem(answer, 401)
    answer = client.post(PATH, json=SEARCH, headers={"Authorization": f"Bearer {register(runtime, people['admin'])}"})
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers


# ---------------------------------------------------------------- refusals as problem details

def test_bad_input_is_400_naming_each_field_and_nothing_is_searched(api):
    runtime, people = api["runtime"], api["people"]
    credentials = register(runtime, people["admin"])
    assert "not valid JSON" in assert_problem(call(api["app"], credentials, "{not json"), 400)["detail"]
    missing = assert_problem(call(api["app"], credentials, {k: v for k, v in SEARCH.items() if k != "reason"}), 400)
    assert "reason" in missing["errors"]
    extra = assert_problem(call(api["app"], credentials, {**SEARCH, "address": "1 Test Road"}), 400)
    assert "address" in extra["errors"]
    short = assert_problem(call(api["app"], credentials, {**SEARCH, "reason": "checking"}), 400)
    assert "at least 3 words" in short["errors"]["reason"]
    one_key = assert_problem(call(api["app"], credentials, {"family_name": "Child", "reason": REASON}), 400)
    assert "Enter at least two of" in one_key["errors"]["keys"]
    postcode = assert_problem(call(api["app"], credentials, {**SEARCH, "postcode": "nowhere"}), 400)
    assert "postcode" in postcode["errors"]
    future = assert_problem(call(api["app"], credentials, {**SEARCH, "date_of_birth": "2999-01-01"}), 400)
    assert "date_of_birth" in future["errors"]
    control = assert_problem(call(api["app"], credentials, {**SEARCH, "reason": REASON + "\u0000"}), 400)
    assert "reason" in control["errors"]
    number = assert_problem(call(api["app"], credentials, {**SEARCH, "nhs_number": "123"}), 400)
    assert "nhs_number" in number["errors"]
    assert audited(runtime, "index_searched") == []


def test_wrong_media_type_method_address_and_size_are_problems(api):
    runtime, people = api["runtime"], api["people"]
    credentials = register(runtime, people["admin"])
    assert_problem(call(api["app"], credentials, "family_name=Child", content_type="application/x-www-form-urlencoded"),
                   415)
    assert_problem(call(api["app"], credentials, method="GET", body=""), 405)
    assert_problem(call(api["app"], credentials, path="/api/v1/nowhere"), 404)
    assert_problem(call(api["app"], credentials, {**SEARCH, "reason": REASON + " x" * 20000}), 413)
    assert audited(runtime, "index_searched") == []


def test_an_unexpected_error_is_a_500_problem_not_a_page(api, monkeypatch):
    from app.services import client_index_search

    def broken(*args, **kwargs):
        raise RuntimeError("database fell over")
    monkeypatch.setattr(client_index_search, "search", broken)
    api["app"].config["PROPAGATE_EXCEPTIONS"] = False
    body = assert_problem(call(api["app"], register(api["runtime"], api["people"]["admin"])), 500)
    assert "database" not in json.dumps(body)


def test_a_client_of_another_authority_searches_as_its_own_authority(api):
    runtime, people = api["runtime"], api["people"]
    to_delivery(runtime, people)
    elsewhere = other_authority(runtime)
    answer = call(api["app"], register(runtime, elsewhere["otto"], name="Liquidlogic"))
    [result] = answer.get_json()["results"]
    assert result["home_authority"] == "Testshire"
    [searched] = audited(runtime, "index_searched")
    assert searched.detail["authority_id"] == elsewhere["authority"] and searched.detail["client"] == "Liquidlogic"


# ---------------------------------------------------------------- the OpenAPI document

def test_the_openapi_document_is_3_1_with_the_path_and_security_scheme(api):
    answer = api["app"].test_client().get("/api/v1/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert "Set-Cookie" not in answer.headers
    document = json.loads(answer.get_data(as_text=True))
    assert document["openapi"].startswith("3.1")
    operation = document["paths"][PATH]["post"]
    assert operation["security"] == [{"client": []}, {"oauth": ["index:read"]}]
    assert document["components"]["securitySchemes"]["client"]["scheme"] == "bearer"
    assert {"200", "400", "401", "403", "413", "415"} <= set(operation["responses"])
    assert set(operation["responses"]["401"]["content"]) == {"application/problem+json"}
    assert set(operation["responses"]["200"]["content"]) == {"application/json"}
    assert [path for path in document["paths"] if not path.startswith("/api/v1/")] == []
