"""Opaque page cursors: the last key a page listed, signed so a client can neither forge nor edit one.

A cursor is bound to the client and the query it was given for: one client's cursor, or one taken
from another query, is refused like a tampered one (400), never read as a different position.
"""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

MAX_LENGTH = 400  # far above any cursor made here


class CursorInvalid(ValueError):
    pass


def _signer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=f"ecaf-api-cursor:{purpose}")


def make(purpose: str, *, after: int, client_ref: str, query: dict) -> str:
    return _signer(purpose).dumps({"after": after, "client": client_ref, "query": query})


def read(purpose: str, cursor: str, *, client_ref: str, query: dict) -> int:
    """The key to read after, or CursorInvalid when the cursor is not one this API gave for this query."""
    try:
        found = _signer(purpose).loads(cursor)
    except (BadData, UnicodeError, ValueError, TypeError):
        raise CursorInvalid("not a cursor this API gave") from None
    if not isinstance(found, dict) or found.get("client") != client_ref or found.get("query") != query:
        raise CursorInvalid("a cursor of another query")
    after = found.get("after")
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise CursorInvalid("not a cursor this API gave")
    return after
