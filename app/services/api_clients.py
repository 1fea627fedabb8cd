"""Registering, revoking and authenticating the client systems that call the JSON API.

The secret is 256 random bits shown once; only its SHA-256 is stored. A slow password hash
(argon2, as for people's passwords) guards low-entropy secrets against guessing; a random 256-bit
secret cannot be guessed, and a fast hash keeps every API call cheap while a stolen table still
reveals no usable secret.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.models import API_SCOPES, ApiClient, User
from app.uk_time import local

NAME_LIMIT = 120
CLIENT_ID = re.compile(r"[0-9a-f]{24}")  # secrets.token_hex(12), as register() makes them
REASON_LIMIT = 1000
# Compared against when the client id is unknown, so an unknown id costs what a wrong secret does.
_NO_HASH = hashlib.sha256(b"no such client").hexdigest()


class ApiClientRefused(PermissionError):
    """The user may not manage API clients, or not this one (treat as not found)."""


class ApiClientInvalid(ValueError):
    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class Registered:
    client: ApiClient
    credentials: str  # "<client id>.<secret>", shown once


def today() -> date:
    return local(now()).date()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def problems(name: str, scopes: list[str], expires_on: date | None, expiry_problem: str | None) -> dict[str, str]:
    found = {}
    if not name:
        found["name"] = "Enter the name of the client system"
    elif len(name) > NAME_LIMIT:
        found["name"] = f"The name must be {NAME_LIMIT} characters or fewer"
    if not scopes:
        found["scopes"] = "Select what the client system may do"
    elif any(scope not in API_SCOPES for scope in scopes):
        found["scopes"] = "Select only the permissions listed"
    if expiry_problem:
        found["expires-on-day"] = expiry_problem
    elif expires_on is None:
        found["expires-on-day"] = "Enter the date the credentials expire"
    elif expires_on <= today():
        found["expires-on-day"] = "The expiry date must be in the future"
    elif (expires_on - today()).days > 366:
        found["expires-on-day"] = "The expiry date must be within a year"
    return found


def clients(session: Session, user: User) -> list[ApiClient]:
    if not policy.may_manage_api_clients(user):
        raise ApiClientRefused("not an administrator")
    return list(session.scalars(select(ApiClient).where(policy.api_client_filter(user))
                                .order_by(ApiClient.created_at.desc(), ApiClient.id.desc())))


def client(session: Session, user: User, client_id: int) -> ApiClient:
    found = session.scalars(select(ApiClient).where(ApiClient.id == client_id,
                                                    policy.api_client_filter(user))).first()
    if found is None:
        raise ApiClientRefused(f"api client {client_id}")
    return found


def register(session: Session, user: User, *, name: str, scopes: list[str], expires_on: date | None,
             expiry_problem: str | None = None) -> Registered:
    if not policy.may_manage_api_clients(user):
        raise ApiClientRefused("not an administrator")
    found = problems(name, scopes, expires_on, expiry_problem)
    if found:
        raise ApiClientInvalid(found)
    secret = secrets.token_urlsafe(32)
    row = ApiClient(client_id=secrets.token_hex(12), secret_hash=_hash(secret), name=name,
                    authority_id=policy.authority_id_of(user),
                    scope_list=" ".join(s for s in API_SCOPES if s in scopes), expires_on=expires_on,
                    created_by_id=user.id, created_at=now())
    session.add(row)
    session.flush()
    audit.record(session, "api_client_registered", actor_id=user.id, client=name, client_ref=row.client_id,
                 scopes=list(row.scopes), expires_on=expires_on.isoformat())
    return Registered(row, f"{row.client_id}.{secret}")


def revoke(session: Session, user: User, client_id: int, reason: str) -> ApiClient:
    row = client(session, user, client_id)
    if not reason:
        raise ApiClientInvalid({"reason": "Enter why the client system may no longer call eCAF"})
    if len(reason) > REASON_LIMIT:
        raise ApiClientInvalid({"reason": f"The reason must be {REASON_LIMIT} characters or fewer"})
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by_id, row.revoked_reason = now(), user.id, reason
        audit.record(session, "api_client_revoked", actor_id=user.id, client=row.name,
                     client_ref=row.client_id, reason=reason)
    return row


def authenticate(session: Session, credentials: str | None) -> tuple[ApiClient, tuple[str, ...]] | None:
    """The live client these credentials name, with the scopes they carry, or None: unknown, wrong,
    expired and revoked alike. Credentials are the client's own `<client id>.<secret>` (all its scopes)
    or an access token from POST /api/v1/oauth/token (the scopes it was issued with)."""
    credentials = credentials or ""
    if credentials and "." not in credentials:
        from app.services import api_tokens  # tokens are checked against their client: imported late, no cycle
        found = api_tokens.holder(session, credentials[:200])
        if found is not None:
            found[0].last_used_at = now()
        return found
    row = client_by_secret(session, credentials)
    if row is None:
        return None
    row.last_used_at = now()
    return row, row.scopes


def client_by_secret(session: Session, credentials: str | None) -> ApiClient | None:
    """The live client whose `<client id>.<secret>` these are; the same cost whether the id is known or not."""
    client_id, _, secret = (credentials or "").partition(".")
    return live_client(session, client_id, secret)


def by_client_id(session: Session, client_id: str | None) -> ApiClient | None:
    """The client with this public id; anything not shaped like one (NUL, say) is asked of no database."""
    if not client_id or not CLIENT_ID.fullmatch(client_id):
        return None
    return session.scalars(select(ApiClient).where(ApiClient.client_id == client_id)).first()


def live_client(session: Session, client_id: str | None, secret: str | None) -> ApiClient | None:
    row = by_client_id(session, client_id) if secret else None
    return row if secret_opens(row, secret) else None


def secret_opens(row: ApiClient | None, secret: str | None) -> bool:
    """Whether `secret` is this live client's; compared at the same cost when there is no client."""
    matches = hmac.compare_digest(row.secret_hash if row else _NO_HASH, _hash(secret or ""))
    return row is not None and matches and policy.is_live_client(row, today())


def call_audited(session: Session, row: ApiClient, scopes: tuple[str, ...], *, scope: str, method: str,
                 path: str) -> bool:
    """Whether the authenticated client's `scope` allows the call, recorded as api_called either way.
    `scopes`: what the credentials carry (a token narrows its client, never widens it)."""
    allowed = policy.client_may(row, scope) and scope in scopes
    audit.record(session, "api_called", client=row.name, client_ref=row.client_id, method=method, path=path,
                 scope=scope, allowed=allowed)
    return allowed


def rate_limited(session: Session, row: ApiClient, *, limit: str, retry_after: int, method: str,
                 path: str) -> None:
    """The client called more often than its limit allows (recorded once a minute, not once per call)."""
    audit.record(session, "api_rate_limited", client=row.name, client_ref=row.client_id, limit=limit,
                 retry_after=retry_after, method=method, path=path)
