"""Authenticating the client system on every call, and checking its scope, before the view runs."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import wraps
from typing import Callable

from flask import g, request

from app.api import rate_limits
from app.api.problems import Problem
from app.api.text import UNPRINTABLE
from app.services import api_clients
from app.web import request_db
from app.web.access import api_client

log = logging.getLogger(__name__)
PATH_LIMIT = 500


@dataclass(frozen=True)
class Caller:
    """The authenticated client, as read at the start of the call (the view reloads it)."""
    id: int
    client_id: str
    name: str
    scopes: tuple[str, ...]


def _credentials() -> str | None:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else None


def _audited_path() -> str:
    """The path as the audit trail can hold it: unprintable characters written as escapes, length bounded."""
    return UNPRINTABLE.sub(lambda found: f"\\x{ord(found.group()):02x}", request.path)[:PATH_LIMIT]


def caller() -> Caller:
    return g.api_caller


def requires(scope: str) -> Callable:
    """Authenticate (401 alike for unknown, wrong, expired and revoked), hold the client to its rate
    limit (429), audit the call, check `scope` (403). An address that keeps sending failing credentials
    is refused (429) before they are looked at, so secrets cannot be tried fast; a client's budget is
    spent only once its credentials are right, so nobody can spend another client's."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):
            limits = rate_limits.of_app()
            with request_db.transaction() as session:
                client, scopes = api_clients.authenticate(session, _credentials()) or (None, ())
                wait = limits.client_wait(client.client_id) if client is not None else None
                allowed = client is not None and _audited(session, client, scopes, scope, wait, limits)
            if client is None:
                credentials_failed(limits)
                raise Problem(401)
            if wait is not None:
                raise too_many(wait, f"This client system may make {rate_limits.described(limits.per_client)}.")
            if not allowed:
                raise Problem(403, f"This call needs the scope {scope}.")
            return view(*args, **kwargs)
        checked.api_scope = scope  # read by the scope tests: every endpoint names the scope it needs
        return api_client(checked)
    return decorate


def credentials_failed(limits: rate_limits.RateLimits) -> None:
    """Count a failure against the caller's address; past its limit, answer 429 rather than 401. Valid
    credentials are never refused for what others sent from the same address (a shared exit or proxy),
    so nobody can lock a client system out; a 256-bit secret cannot be guessed however fast it is tried."""
    address = request.remote_addr or "unknown"
    wait = limits.address_wait(address)
    limits.credentials_failed(address)
    log.info("api call refused: no valid client credentials")
    if wait is not None:
        if limits.first_refusal_this_minute("address", address):
            log.warning("api calls refused from %s: too many failed credentials", address)
        raise too_many(wait, "This address has sent too many failing credentials.")


def _audited(session, client, scopes: tuple[str, ...], scope: str, wait: int | None,
             limits: rate_limits.RateLimits) -> bool:
    """Whether the scope allows the call. Every call within the limit is audited; of those refused
    for the limit, the first in each minute (a flood must not flood the audit trail too)."""
    if wait is None:
        g.api_caller = Caller(client.id, client.client_id, client.name, scopes)
        return api_clients.call_audited(session, client, scopes, scope=scope, method=request.method,
                                        path=_audited_path())
    if limits.first_refusal_this_minute("client", client.client_id):
        api_clients.rate_limited(session, client, limit=rate_limits.described(limits.per_client), retry_after=wait,
                                 method=request.method, path=_audited_path())
    return False


def too_many(wait: int, why: str) -> Problem:
    return Problem(429, f"{why} Try again in {wait} seconds.", headers={"Retry-After": str(wait)})
