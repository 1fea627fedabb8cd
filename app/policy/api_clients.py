"""Who may register and revoke API clients, and what a client may call.

An administrator manages the clients of their own authority only; a client of another authority is
as unknown to them as one that does not exist. A client may call an endpoint while it is neither
revoked nor expired and holds the endpoint's scope; it acts for its authority as a practitioner
would on the index (no shielded children, no administrator's view).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import and_, true

from app.models import ApiClient, User

from .episodes import authority_id_of, is_administrator_of


def may_manage_api_clients(user: User | None) -> bool:
    return is_administrator_of(user, authority_id_of(user))


def api_client_filter(user: User | None):
    """The clients `user` may see and revoke: those of their own authority."""
    if not may_manage_api_clients(user):
        return ~true()
    return ApiClient.authority_id == authority_id_of(user)


def is_live_client(client: ApiClient | None, today: date) -> bool:
    return client is not None and client.revoked_at is None and client.expires_on >= today


def live_client_clause(today: date):
    """The clients `is_live_client` accepts, as SQL."""
    return and_(ApiClient.revoked_at.is_(None), ApiClient.expires_on >= today)


def client_may(client: ApiClient, scope: str) -> bool:
    return scope in client.scopes
