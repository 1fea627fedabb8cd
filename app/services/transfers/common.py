"""What export, import and subject access share: the refusal, names, and small conversions."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from app.models import ApiClient, Authority, User

FORMAT = "ecaf-episode-export"
SCHEMA_VERSION = 1
MOVED_REASON = "moved to another local authority"
MAX_LISTED_PROBLEMS = 50
LEAD_FIELD = "lead_professional_email"
SIGNATURE_ALGORITHM = "hmac-sha256"


class TransferRefused(Exception):
    """An import that cannot go ahead; the message says why, `problems` lists every detail and
    `field` names what the person should change: the file, or the lead professional's email."""

    def __init__(self, message: str, problems: list[str] | None = None, field: str = "document"):
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.field = field


def acted_by(actor: User | ApiClient | None) -> dict:
    """Who an audit row names: a person by id, or a client system by name (no person stands behind
    its call, so its rows carry no actor id)."""
    if isinstance(actor, ApiClient):
        return {"actor_id": None, "client": actor.name, "client_ref": actor.client_id,
                "authority_id": actor.authority_id}
    return {"actor_id": actor.id if actor is not None else None}


def user_id_of(actor: User | ApiClient | None) -> int | None:
    """The person acting, for the columns that name one; None for a client system."""
    return actor.id if isinstance(actor, User) else None


def iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def parse_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def email_of(user: User | None) -> str | None:
    return user.email if user is not None else None


def authority_part(authority: Authority) -> dict:
    return {"id": authority.id, "code": authority.code, "name": authority.name}


def canonical(document: dict) -> bytes:
    """The bytes the checksum is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def checksum(document: dict) -> str:
    """SHA-256 of the document without its checksum and signature (the signature covers the checksum)."""
    return hashlib.sha256(canonical({k: v for k, v in document.items()
                                     if k not in ("checksum", "signature")})).hexdigest()

