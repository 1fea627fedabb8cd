"""Short-lived access tokens for client systems (OAuth 2 client credentials, RFC 6749 section 4.4).

A client trades its credentials for a token that lasts TOKEN_MINUTES and carries the scopes it
asked for (within its own), so the long-lived secret crosses the wire once per token rather than on
every call. Only the token's SHA-256 is stored; revoking or expiring the client ends its tokens too,
because every call checks the client as well as the token.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.models import ApiClient, ApiToken
from app.services.api_clients import today

TOKEN_MINUTES = 15


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issued(session: Session, client: ApiClient, token: str, scopes: list[str]) -> ApiToken:
    """Keep the token's hash; the client's expired tokens go, so the table holds live ones only."""
    moment = now()
    session.execute(delete(ApiToken).where(ApiToken.client_id == client.id, ApiToken.expires_at <= moment))
    row = ApiToken(token_hash=_hash(token), client_id=client.id, scope_list=" ".join(scopes), issued_at=moment,
                   expires_at=moment + timedelta(minutes=TOKEN_MINUTES))
    session.add(row)
    audit.record(session, "api_token_issued", client=client.name, client_ref=client.client_id, scopes=scopes,
                 expires_at=row.expires_at.isoformat())
    return row


def holder(session: Session, token: str) -> tuple[ApiClient, tuple[str, ...]] | None:
    """The live client a live token was issued to, with the token's scopes; None otherwise."""
    found = session.execute(select(ApiToken, ApiClient).join(ApiClient, ApiClient.id == ApiToken.client_id)
                            .where(ApiToken.token_hash == _hash(token))).first()
    if found is None:
        return None
    row, client = found
    if row.expires_at <= now() or not policy.is_live_client(client, today()):
        return None
    # A token never holds a scope its client has since lost.
    return client, tuple(scope for scope in row.scopes if policy.client_may(client, scope))
