"""Notices a client system sends the national index: it holds an assessment of a child (issue 21).

PUT /api/v1/index/notices/{reference} and its GET and DELETE come here. A notice belongs to the client
that sent it, under the client's own reference: no client ever reads, replaces or withdraws another's
(another's reference is simply not found, and that refusal is audited like every change). The caller
checks and normalises the fields (app/api/notices.py); the reference and the client are checked here.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.models import ApiClient, ReceivedNotice
from app.services.api_clients import today

SCOPE = "index:notify"
# The client's own id for its assessment: short, and safe in a URL, a log line and an audit row.
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
REFERENCE_RULE = "Use 1 to 64 letters, digits, dots, dashes, colons or underscores, starting with a letter or digit"


class NoticeRefused(PermissionError):
    """The client is not live or lacks the index:notify scope."""


class NoticeNotFound(LookupError):
    """No live notice of this client has this reference (another client's is not this client's)."""


@dataclass(frozen=True)
class NoticeFields:
    """A notice as sent, already checked and normalised (NHS number as ten digits, postcode as the index's)."""
    assessment: str
    status: str
    family_name: str
    given_names: str | None
    date_of_birth: date
    postcode: str | None
    nhs_number: str | None
    contact: dict


def valid_reference(reference: str) -> bool:
    return bool(REFERENCE.fullmatch(reference or ""))


def _audited(client: ApiClient, reference: str) -> dict:
    return {"client": client.name, "client_ref": client.client_id, "authority_id": client.authority_id,
            "reference": reference}


def _checked(client: ApiClient | None, reference: str) -> None:
    if not policy.is_live_client(client, today()) or not policy.client_may(client, SCOPE):
        raise NoticeRefused(f"client {client.client_id if client else None} may not send index notices")
    if not valid_reference(reference):
        raise ValueError(f"not a reference: {reference[:80]!r}")


def _own(session: Session, client: ApiClient, reference: str) -> ReceivedNotice | None:
    return session.scalars(select(ReceivedNotice).where(ReceivedNotice.client_id == client.id,
                                                        ReceivedNotice.reference == reference)).first()


def _not_found(session: Session, client: ApiClient, reference: str, asked: str) -> NoticeNotFound:
    """Audit the refusal, saying whether another client uses the reference (someone may be probing)."""
    another = session.scalar(select(ReceivedNotice.id).where(ReceivedNotice.reference == reference,
                                                             ReceivedNotice.client_id != client.id).limit(1))
    audit.record(session, "index_notice_refused", asked=asked, why="not found",
                 another_clients=another is not None, **_audited(client, reference))
    return NoticeNotFound(reference)


def _inserted(session: Session, client: ApiClient, reference: str, sent: dict) -> ReceivedNotice | None:
    """A new notice, or None when the same client's same reference was sent at the same moment (a retry
    racing the first call): the caller then replaces that one."""
    at = now()
    notice = ReceivedNotice(client_id=client.id, reference=reference, authority_id=client.authority_id,
                            received_at=at, updated_at=at, **sent)
    try:
        with session.begin_nested():
            session.add(notice)
    except IntegrityError:
        return None
    return notice


def put(session: Session, client: ApiClient, reference: str, fields: NoticeFields) -> tuple[ReceivedNotice, bool]:
    """Create or replace this client's notice; (notice, True when it is new or was withdrawn). A replace
    that changes nothing keeps its updated time, so repeating a PUT is harmless."""
    _checked(client, reference)
    sent = asdict(fields)
    notice = _own(session, client, reference)
    if notice is None and (notice := _inserted(session, client, reference, sent)) is not None:
        audit.record(session, "index_notice_received", notice_id=notice.id, changed=sorted(sent),
                     status=notice.status, **_audited(client, reference))
        return notice, True
    notice = notice or _own(session, client, reference)
    at, created = now(), notice.withdrawn_at is not None
    changed = sorted(key for key, value in sent.items() if getattr(notice, key) != value)
    for key in changed:
        setattr(notice, key, sent[key])
    if created:
        notice.received_at, notice.withdrawn_at = at, None
    if created or changed or notice.authority_id != client.authority_id:
        notice.authority_id, notice.updated_at = client.authority_id, at
    session.flush()
    audit.record(session, "index_notice_received" if created else "index_notice_replaced", notice_id=notice.id,
                 changed=changed, status=notice.status, **_audited(client, reference))
    return notice, created


def get(session: Session, client: ApiClient, reference: str) -> ReceivedNotice:
    """This client's live notice (NoticeNotFound, audited, when it has none)."""
    _checked(client, reference)
    notice = _own(session, client, reference)
    if notice is None or notice.withdrawn_at is not None:
        raise _not_found(session, client, reference, "read")
    return notice


def withdraw(session: Session, client: ApiClient, reference: str) -> ReceivedNotice:
    """The notice is withdrawn: searches no longer find it. Withdrawing again changes nothing (a retry is
    safe); a reference this client never used is not found."""
    _checked(client, reference)
    notice = _own(session, client, reference)
    if notice is None:
        raise _not_found(session, client, reference, "withdraw")
    already = notice.withdrawn_at is not None
    if not already:
        notice.withdrawn_at = notice.updated_at = now()
    audit.record(session, "index_notice_withdrawn", notice_id=notice.id, already_withdrawn=already,
                 **_audited(client, reference))
    return notice
