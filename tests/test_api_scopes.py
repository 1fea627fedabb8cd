"""Every endpoint of the JSON API against every scope, and against revoked, expired and missing
credentials, found from the app's own routes so that an endpoint added later is covered too."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app import create_app
from app.clock import now
from app.models import API_SCOPES, ApiClient, AuditEvent, User
from app.services import api_clients
from tests.test_api_index import assert_problem, register

# The document is public, like any published API description; the token endpoint takes the client's
# own id and secret (tests/test_api_tokens.py).
UNCHECKED = {"api.openapi", "api.token"}


def endpoints(app) -> list[tuple[str, str, str, str | None]]:
    """(endpoint, method, a concrete path, the scope it needs) for every API route."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in UNCHECKED:
            continue
        view = app.view_functions[rule.endpoint]
        path = re.sub(r"<int(?:\([^)]*\))?:[^>]+>", "1", rule.rule)
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "ref-1", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path, getattr(view, "api_scope", None)))
    return found


def send(app, credentials: str | None, method: str, path: str):
    headers = {"Authorization": f"Bearer {credentials}"} if credentials else {}
    return app.test_client().open(path, method=method, headers=headers, data=json.dumps({}),
                                  content_type="application/json")



@pytest.fixture
def api(runtime, people):
    # Every endpoint is called with failing credentials from one address: far more than its limit allows.
    return create_app(replace(runtime.config, api_failed_credentials_limit="10000/minute")), runtime, people


def test_every_endpoint_names_the_scope_it_needs(api):
    app, _, _ = api
    found = endpoints(app)
    assert found, "the API has no endpoints"
    assert [(e, m) for e, m, _, scope in found if scope not in API_SCOPES] == []


@pytest.mark.parametrize("scope", API_SCOPES)
def test_each_scope_opens_exactly_its_own_endpoints(api, scope):
    app, runtime, people = api
    credentials = register(runtime, people["admin"], scopes=(scope,), name=f"Holds {scope}")
    for endpoint, method, path, needed in endpoints(app):
        answer = send(app, credentials, method, path)
        with runtime.db.session() as session:
            last = session.scalars(select(AuditEvent).where(AuditEvent.action == "api_called")
                                   .order_by(AuditEvent.id.desc())).first()
        assert last is not None and last.detail["path"] == path and last.detail["method"] == method, endpoint
        assert last.detail["client"] == f"Holds {scope}" and last.detail["scope"] == needed
        if needed == scope:
            assert answer.status_code not in (401, 403), (endpoint, method, answer.get_data(as_text=True))
            assert last.detail["allowed"] is True
        else:
            body = assert_problem(answer, 403)
            assert needed in body["detail"], endpoint
            assert last.detail["allowed"] is False


def test_revoked_expired_and_missing_credentials_open_no_endpoint(api):
    app, runtime, people = api
    every = list(API_SCOPES)
    revoked = register(runtime, people["admin"], scopes=every, name="Revoked")
    expiring = register(runtime, people["admin"], scopes=every, days=1, name="Expiring")
    with runtime.db.session() as session:
        row = session.scalar(select(ApiClient).where(ApiClient.name == "Revoked"))
        api_clients.revoke(session, session.get(User, people["admin"]), row.id, "Contract ended")
    for endpoint, method, path, _ in endpoints(app):
        for credentials in (None, revoked, f"{revoked.partition('.')[0]}.wrong"):
            assert_problem(send(app, credentials, method, path), 401)
        with time_machine.travel(now() + timedelta(days=3)):
            assert_problem(send(app, expiring, method, path), 401)
    with runtime.db.session() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "api_called")).first() is None
