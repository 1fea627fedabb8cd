"""Authorization matrix cases for the administrators' pages of API clients, and the JSON API itself:
see tests/test_authorization_matrix.py.

The world's administrator manages the world's client; the other authority's administrator gets 404
for it, as for one that does not exist; every other role is refused. The JSON API never reads the
session: a signed-in browser is as unknown there as anyone without credentials (401).
"""
from __future__ import annotations

from datetime import timedelta

from app.models import User
from app.services import api_clients

MISSING = 999999


def seed(runtime, world: dict) -> None:
    with runtime.db.session() as session:
        made = api_clients.register(session, session.get(User, world["users"]["admin"]), name="Mosaic",
                                    scopes=["index:read"], expires_on=api_clients.today() + timedelta(days=30))
        world["api_client"] = made.client.id


def cases(world: dict, ids: dict, rules) -> dict:
    Case, by_role, ADMINS, admin_record_rule = rules.Case, rules.by_role, rules.ADMINS, rules.admin_record_rule
    client = world["api_client"]
    return {
        "api_clients.index": [Case("GET", "/admin/api-clients/", by_role(ADMINS))],
        "api_clients.new": [Case("GET", "/admin/api-clients/new", by_role(ADMINS)),
                            Case("POST", "/admin/api-clients/new", by_role(ADMINS, ok=400), {})],
        "api_clients.revoke": [Case("GET", f"/admin/api-clients/{client}/revoke", admin_record_rule(True, 200)),
                               Case("POST", f"/admin/api-clients/{client}/revoke", admin_record_rule(True, 400), {}),
                               Case("GET", f"/admin/api-clients/{MISSING}/revoke", admin_record_rule(False, 200))],
        "api_clients.registered": [
            Case("GET", f"/admin/api-clients/{client}/registered", admin_record_rule(True, 200)),
            Case("GET", f"/admin/api-clients/{MISSING}/registered", admin_record_rule(False, 200))],
        "api.openapi": [Case("GET", "/api/v1/openapi.json", lambda actor: 200)],
        "api.index_search": [Case("POST", "/api/v1/index/search", lambda actor: 401, {"family_name": "Child"})],
        "api.episode_returns_page": [Case("GET", "/api/v1/reports/episodes", lambda actor: 401)],
        # A session is no credential for a token either: OAuth's invalid_client, as for anyone.
        "api.token": [Case("POST", "/api/v1/oauth/token", lambda actor: 401, {"grant_type": "client_credentials"})],
        "api.put_index_notice": [Case("PUT", "/api/v1/index/notices/EHA-1", lambda actor: 401, {"family_name": "Child"})],
        "api.get_index_notice": [Case("GET", "/api/v1/index/notices/EHA-1", lambda actor: 401)],
        "api.withdraw_index_notice": [Case("DELETE", "/api/v1/index/notices/EHA-1", lambda actor: 401)],
    }
