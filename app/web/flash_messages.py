"""Messages shown once on the next page ("“Consent” is complete") travel in a cookie of their own,
sealed (encrypted and signed with a key derived from SECRET_KEY), bound to the signed-in account
and short-lived, instead of in the session's row: a completion and the page after it then write
nothing to the session row just to say so."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken

FLASHES = "_flashes"  # Flask's key for them in the session
LIFETIME_SECONDS = 300  # a message not shown within five minutes is dropped
MAX_COOKIE_BYTES = 3500  # browsers keep cookies to about 4 KB; longer messages are not kept


def cookie_name(secure: bool) -> str:
    return "__Host-ecaf-messages" if secure else "ecaf-messages"


def _sealer(secret: str) -> Fernet:
    key = hashlib.sha256(b"eCAF messages shown once\0" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _owner(user_id: int | None) -> str:
    return "" if user_id is None else str(user_id)


def seal(secret: str, user_id: int | None, messages: list) -> str | None:
    """The cookie's value, or None when there is nothing to keep (or too much for a cookie)."""
    if not messages:
        return None
    sealed = _sealer(secret).encrypt(json.dumps({"for": _owner(user_id), "messages": messages}).encode()).decode()
    return sealed if len(sealed) <= MAX_COOKIE_BYTES else None


def unseal(secret: str, user_id: int | None, value: str | None) -> list:
    """The messages in a cookie sealed for this account (or for nobody signed in) within its lifetime;
    anything else (forged, altered, expired, another account's) is no messages."""
    if not value or len(value) > MAX_COOKIE_BYTES:
        return []
    try:
        content = json.loads(_sealer(secret).decrypt(value.encode(), ttl=LIFETIME_SECONDS))
    except (InvalidToken, ValueError):
        return []
    if not isinstance(content, dict) or not hmac.compare_digest(str(content.get("for", "")), _owner(user_id)):
        return []
    messages = content.get("messages")
    if not isinstance(messages, list):
        return []
    return [(str(m[0]), str(m[1])) for m in messages
            if isinstance(m, (list, tuple)) and len(m) == 2 and all(isinstance(p, str) for p in m)]
