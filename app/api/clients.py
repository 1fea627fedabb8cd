"""Authenticating the client system on every call, and checking its scope, before the view runs."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import wraps
from typing import Callable

from flask import g, request

from app.api.problems import Problem
from app.services import api_clients
from app.web import request_db
from app.web.access import api_client

log = logging.getLogger(__name__)
# Control characters and lone surrogates in a path (a forged %00, say): PostgreSQL refuses NUL in the audit row.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
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
    return _UNPRINTABLE.sub(lambda found: f"\\x{ord(found.group()):02x}", request.path)[:PATH_LIMIT]


def caller() -> Caller:
    return g.api_caller


def requires(scope: str) -> Callable:
    """Authenticate (401 alike for unknown, wrong, expired and revoked), audit the call, check `scope` (403)."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):
            with request_db.transaction() as session:
                client, allowed = api_clients.call_begun(session, _credentials(), scope=scope,
                                                         method=request.method, path=_audited_path())
                if client is None:
                    log.info("api call refused: no valid client credentials")
                    raise Problem(401)
                g.api_caller = Caller(client.id, client.client_id, client.name, client.scopes)
            if not allowed:
                raise Problem(403, f"This call needs the scope {scope}.")
            return view(*args, **kwargs)
        return api_client(checked)
    return decorate
