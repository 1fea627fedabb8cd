"""POST /api/v1/oauth/token: OAuth 2 client credentials (RFC 6749 section 4.4), by Authlib.

A client authenticates with its client id and secret (HTTP Basic, or in the form) and receives a
bearer token for TOKEN_MINUTES, carrying the scopes it asked for within its own (all of them when it
asks for none; asking for one it lacks is `invalid_scope`). Errors are problem details carrying
RFC 6749's `error` and `error_description` members, so OAuth libraries read them as usual.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from flask import Flask, Response, current_app, g, request
from pydantic import BaseModel, Field
from spectree import Response as Described

from app import audit
from app.api import problems, rate_limits
from app.api.clients import credentials_failed, too_many
from app.api.schemas import ProblemDetails
from app.api.spec import spec
from app.api.text import UNPRINTABLE
from app.models import API_SCOPES, ApiClient
from app.services import api_clients, api_tokens
from app.web import request_db
from app.web.access import api_client

log = logging.getLogger(__name__)
GRANT = "client_credentials"


class RegisteredClient(ClientMixin):
    """An ApiClient as Authlib asks about it (kept apart from the model: only this endpoint needs it)."""

    def __init__(self, row: ApiClient):
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self):
        return None

    def check_redirect_uri(self, redirect_uri) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        if not api_clients.secret_opens(self.row, client_secret):  # the row Authlib asked for: no second query
            return False
        # Tokens come out of the client's own budget, spent only once its secret is right: each token is
        # a row and an audit row, so a client may not mint them faster than it may call.
        limits = rate_limits.of_app()
        if (wait := limits.client_wait(self.row.client_id)) is not None:
            raise too_many(wait, f"This client system may make {rate_limits.described(limits.per_client)}.")
        return True

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ClientCredentials.TOKEN_ENDPOINT_AUTH_METHODS

    def check_response_type(self, response_type) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT

    def get_allowed_scope(self, scope: str | None) -> str:
        asked = (scope or "").split() or list(self.row.scopes)
        return " ".join(s for s in API_SCOPES if s in asked and s in self.row.scopes)


class ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_requested_scope(self):
        """Refuse a scope the client does not hold rather than quietly issuing less."""
        asked = (self.request.payload.scope or "").split()
        row = self.request.client.row
        if any(scope not in row.scopes for scope in asked):
            # Refused for its scope, as a call is: on the audit trail (what was asked, bounded).
            audit.record(g.oauth_session, "api_token_refused", client=row.name, client_ref=row.client_id,
                         why="scope", asked=[UNPRINTABLE.sub("?", scope[:40]) for scope in asked[:10]])
            raise InvalidScopeError("This client system does not hold every scope asked for.")


class TokenServer(AuthorizationServer):
    def handle_response(self, status_code, payload, headers):
        if status_code < 400:
            return super().handle_response(status_code, payload, headers)
        body = dict(payload) if isinstance(payload, (dict, list)) else json.loads(payload or "{}")
        error = body.get("error", "invalid_request")
        detail = body.get("error_description") or error.replace("_", " ").capitalize()
        if error == "invalid_client":
            return invalid_client()
        return _refused(status_code, error, detail)


def _refused(status_code: int, error: str, detail: str, headers: dict | None = None) -> Response:
    answer = problems.response(status_code, detail, members={"error": error, "error_description": detail},
                               headers=headers)
    answer.headers["Cache-Control"] = "no-store"
    log.info("api token refused: %s", error)
    return answer


def invalid_client() -> Response:
    """One answer whether the id is unknown, the secret wrong, or the Basic header unreadable."""
    return _refused(401, "invalid_client", "Client authentication failed: check the client id and secret.",
                    {"WWW-Authenticate": 'Basic realm="ecaf"'})


def _basic_unreadable() -> bool:
    """Basic credentials that are not base64 of UTF-8 (Authlib would fail on them with a 500)."""
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic":
        return False
    try:
        base64.b64decode(value.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return True
    return False


def _query_client(client_id: str):
    row = api_clients.by_client_id(g.oauth_session, client_id)
    return RegisteredClient(row) if row is not None else None


def _save_token(token: dict, request) -> None:
    api_tokens.issued(g.oauth_session, request.client.row, token["access_token"], token.get("scope", "").split())


def _not_a_token_request(req, resp, error, instance) -> None:
    """A form that does not fit TokenRequest (a field sent twice, say): OAuth's invalid_request."""
    if error is not None:
        detail = "The token request is malformed: send each field once."
        raise problems.Problem(400, detail, members={"error": "invalid_request", "error_description": detail})


class TokenRequest(BaseModel):
    """application/x-www-form-urlencoded, as RFC 6749 asks; Authlib checks what each field says."""
    grant_type: str | None = Field(None, examples=[GRANT])
    scope: str | None = Field(None, description="Space-separated scopes; leave out for all the client holds")
    client_id: str | None = Field(None, description="With client_secret, when not using HTTP Basic")
    client_secret: str | None = None


class Token(BaseModel):
    access_token: str
    token_type: str = Field(..., examples=["Bearer"])
    expires_in: int
    scope: str


class TokenProblem(ProblemDetails):
    error: str = Field(..., description="RFC 6749 error code, e.g. invalid_client")
    error_description: str


def install(bp) -> None:
    @bp.post("/oauth/token")
    @api_client
    @spec.validate(form=TokenRequest, resp=Described(HTTP_200=Token, HTTP_400=TokenProblem, HTTP_401=TokenProblem),
                   tags=["oauth"], operation_id="issueToken", before=_not_a_token_request)
    def token(form: TokenRequest) -> Response:
        """A short-lived bearer token for the client's credentials (OAuth 2 client credentials grant)."""
        # Failing credentials here count with those sent to any other call (clients.credentials_failed).
        if _basic_unreadable():
            answer = invalid_client()
        else:
            with request_db.transaction() as session:
                g.oauth_session = session
                answer = current_app.extensions["ecaf_oauth"].create_token_response()
        if answer.status_code == 401:
            credentials_failed(rate_limits.of_app())
        return answer


def init_app(app: Flask) -> None:
    """Each app its own server: Authlib reads the token lifetime from the app's config."""
    app.config.setdefault("OAUTH2_TOKEN_EXPIRES_IN", {GRANT: api_tokens.TOKEN_MINUTES * 60})
    server = TokenServer(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(ClientCredentials)
    app.extensions["ecaf_oauth"] = server
