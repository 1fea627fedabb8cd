"""The audit trail: append-only, written in the same transaction as what it records.

Rows are sealed into a hash chain when their transaction commits: each gets the next number
(`seq`, commit order), its predecessor's hash, and an HMAC-SHA-256 over its own content and that
link, keyed with ECAF_AUDIT_KEY (never in the database), so a changed, removed or inserted row
breaks the chain and cannot be re-linked without the key (`app.audit.verify_chain` finds where).
Rows sealed before keyed links carry a plain SHA-256 (`link_kind` "sha256").
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, event, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from app.clock import as_utc
from app.db import AUDIT_KEY_INFO

from .base import Base, JSONType, UTCDateTime

GENESIS = "0" * 64  # the link of the first row
# The pg_advisory_xact_lock key that serialises sealing across processes ("eCAFaudt" in ASCII).
CHAIN_LOCK = 0x65434146_61756474
SHA256_LINK = "sha256"        # rows sealed before keyed links
HMAC_LINK = "hmac-sha256"     # every row sealed since


class AuditKeyUnavailable(RuntimeError):
    """A session tried to seal audit rows without the audit key."""


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_episode", "episode_id", "at"), Index("ix_audit_actor", "actor_id", "at"),
                      Index("ix_audit_at", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    action: Mapped[str] = mapped_column(String(60))
    # No foreign key: the row must outlive a deleted episode as its stub.
    episode_id: Mapped[int | None]
    detail: Mapped[dict | None] = mapped_column(JSONType)
    # The hash chain: rows are numbered in commit order and each carries its predecessor's hash.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))
    # How row_hash is made: "hmac-sha256" (keyed with ECAF_AUDIT_KEY) or, for rows sealed before
    # keyed links, "sha256" (None reads as "sha256").
    link_kind: Mapped[str | None] = mapped_column(String(16))


def _canonical(seq, at, actor_id, action, episode_id, detail, prev_hash, **more) -> bytes:
    """The row's canonical JSON: the same bytes whichever database stored it."""
    # Round-trip the detail through JSON first so it hashes as the database will give it back.
    detail = json.loads(json.dumps(detail)) if detail is not None else None
    content = {"seq": seq, "at": as_utc(at).isoformat(timespec="microseconds"), "actor_id": actor_id,
               "action": action, "episode_id": episode_id, "detail": detail, "prev_hash": prev_hash, **more}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def chain_hash(seq: int, at: datetime, actor_id: int | None, action: str, episode_id: int | None,
               detail, prev_hash: str) -> str:
    """The plain SHA-256 link of rows sealed before keyed links (anyone can recompute it)."""
    return hashlib.sha256(_canonical(seq, at, actor_id, action, episode_id, detail, prev_hash)).hexdigest()


def keyed_hash(key: bytes, seq: int, at: datetime, actor_id: int | None, action: str, episode_id: int | None,
               detail, prev_hash: str) -> str:
    """The HMAC-SHA-256 link: only a holder of the audit key can make one that verifies."""
    # The link kind is inside the MAC, so a keyed row cannot pass for a plain one or the reverse.
    content = _canonical(seq, at, actor_id, action, episode_id, detail, prev_hash, link=HMAC_LINK)
    return hmac.new(key, b"ecaf-audit-row\x00" + content, hashlib.sha256).hexdigest()


def hash_of(event: AuditEvent, key: bytes | None = None) -> str:
    """The hash `event` should carry: keyed when it is a keyed row (then `key` is needed)."""
    fields = (event.seq, event.at, event.actor_id, event.action, event.episode_id, event.detail, event.prev_hash)
    if event.link_kind == HMAC_LINK:
        if key is None:
            raise AuditKeyUnavailable("a keyed audit row needs the audit key (ECAF_AUDIT_KEY) to check")
        return keyed_hash(key, *fields)
    return chain_hash(*fields)


# Sealing. Rows recorded during a transaction are held back from its flushes and written at
# commit, just after everything else, so the chain's lock is held only for their INSERT and the
# COMMIT rather than for the whole request.

_HELD = "audit_events_held"      # session.info: [(event, transaction it was recorded in)]
_SEALING = "audit_events_sealing"


def _current_transaction(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "before_flush")
def _hold_back(session: Session, _context, _instances) -> None:
    if session.info.get(_SEALING):
        return
    new = [obj for obj in session.new if isinstance(obj, AuditEvent)]  # in the order they were recorded
    if not new:
        return
    held = session.info.setdefault(_HELD, [])
    transaction = _current_transaction(session)
    for obj in new:
        session.expunge(obj)
        held.append((obj, transaction))


@event.listens_for(Session, "before_commit")
def _seal_on_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its rows wait for the real commit
    session.flush()  # everything else first, so the lock below is not held while it is written
    events = [obj for obj, _ in session.info.pop(_HELD, [])]
    if not events:
        return
    session.info[_SEALING] = True
    try:
        _link(session, events)
        session.add_all(events)
        session.flush()
    finally:
        session.info.pop(_SEALING, None)


# The last sealed row: read on every sealing, so the statement is built once.
_CHAIN_HEAD = (select(AuditEvent.seq, AuditEvent.row_hash).where(AuditEvent.seq.is_not(None))
               .order_by(AuditEvent.seq.desc()).limit(1))


def _link(session: Session, events: list[AuditEvent]) -> None:
    """Number and key-hash `events` after the last committed row, under the chain's lock."""
    key = session.info.get(AUDIT_KEY_INFO)
    if not key:
        # Refused rather than sealed unkeyed: an unkeyed row after keyed ones is a broken chain.
        raise AuditKeyUnavailable("audit rows cannot be sealed: this session's Database has no audit key "
                                  "(ECAF_AUDIT_KEY)")
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Held to commit. SQLite needs none: its transactions begin with BEGIN IMMEDIATE.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
    last = connection.execute(_CHAIN_HEAD).first()
    seq, prev_hash = (last.seq, last.row_hash) if last else (0, GENESIS)
    for obj in events:
        seq += 1
        obj.seq, obj.prev_hash, obj.link_kind = seq, prev_hash, HMAC_LINK
        obj.row_hash = prev_hash = hash_of(obj, key)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    held = session.info.get(_HELD)
    if held:
        session.info[_HELD] = [(obj, tx) for obj, tx in held if not _inside(tx, previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _forget_on_close(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_HELD, None)
