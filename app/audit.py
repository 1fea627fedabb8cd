"""Append-only audit trail. Callers pass the session of the change they record.

Rows are sealed into a keyed hash chain at commit (`app.models.audit`); the database refuses to
change or remove them (`install_append_only`); `verify_chain` proves nobody did anyway, and
`app.audit_checkpoints` proves against a signed checkpoint outside the database that no newest
rows were removed.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app import request_ids
from app.clock import now
from app.db import Database
from app.models import AuditEvent
from app.models.audit import GENESIS, HMAC_LINK, SHA256_LINK, AuditKeyUnavailable, hash_of

# Who opened an episode: what its lead professional may see of its audit trail.
OPENED_ACTIONS = ("episode_viewed", "artefact_viewed", "episode_printed", "episode_pdf_downloaded",
                  "episode_exported", "subject_access_export", "attachment_downloaded",
                  # A recipient of a share under the duty to share (app/policy/duty_to_share.py).
                  "shared_records_viewed", "shared_record_viewed", "shared_access_refused")


def record(session: Session, action: str, *, actor_id: int | None = None,
           episode_id: int | None = None, **detail) -> AuditEvent:
    # The request or job this row was written for (sealed with the rest of the detail), so the row
    # leads to that request's log lines. `request_id` already names search and transfer requests.
    if request_ids.current() and "request_ref" not in detail:
        detail["request_ref"] = request_ids.current()
    event = AuditEvent(at=now(), actor_id=actor_id, action=action, episode_id=episode_id,
                       detail=detail or None)
    session.add(event)
    return event


# ---------------------------------------------------------------- append-only in the database

_REFUSE = "audit_event is append-only: {op} refused"

_POSTGRESQL_INSTALL = (
    f"""CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
            MESSAGE = '{_REFUSE.format(op="' || TG_OP || '")}';
        END $$""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    # TRUNCATE fires no row trigger: it needs its own.
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
)
_POSTGRESQL_REMOVE = (
    "DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event",
    "DROP TRIGGER IF EXISTS audit_event_no_delete ON audit_event",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
    "DROP FUNCTION IF EXISTS audit_event_append_only()",
)
_SQLITE_INSTALL = tuple(
    f"""CREATE TRIGGER audit_event_no_{op.lower()} BEFORE {op} ON audit_event
        BEGIN SELECT RAISE(ABORT, '{_REFUSE.format(op=op)}'); END"""
    for op in ("UPDATE", "DELETE"))
_SQLITE_REMOVE = ("DROP TRIGGER IF EXISTS audit_event_no_update", "DROP TRIGGER IF EXISTS audit_event_no_delete")


def install_append_only(connection: Connection) -> None:
    """Triggers that refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit rows."""
    for statement in _statements(connection, _POSTGRESQL_INSTALL, _SQLITE_INSTALL):
        connection.exec_driver_sql(statement)


def remove_append_only(connection: Connection) -> None:
    for statement in _statements(connection, _POSTGRESQL_REMOVE, _SQLITE_REMOVE):
        connection.exec_driver_sql(statement)


def _statements(connection: Connection, postgresql: tuple, sqlite: tuple) -> tuple:
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no append-only triggers for {dialect}")
    return postgresql if dialect == "postgresql" else sqlite


# ---------------------------------------------------------------- verification

@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found: rows checked, and the first broken link if there is one."""

    checked: int
    last_seq: int | None = None
    last_hash: str | None = None
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str | None = None
    # The last row linked by plain SHA-256 (sealed before keyed links), 0 when there is none.
    unkeyed_until: int = 0

    @property
    def intact(self) -> bool:
        return self.problem is None

    def lines(self) -> list[str]:
        found = [f"checked {self.checked} rows"]
        if self.intact:
            head = f" (last seq {self.last_seq}, hash {self.last_hash})" if self.last_seq else ""
            return found + [f"audit trail intact{head}"] + self._unkeyed_lines()
        where = f"seq {self.broken_seq} (id {self.broken_id})" if self.broken_seq is not None \
            else f"id {self.broken_id}"
        return found + [f"audit trail broken at {where}: {self.problem}"]

    def _unkeyed_lines(self) -> list[str]:
        if not self.unkeyed_until:
            return []
        vouched = "the first keyed row vouches for them" if (self.last_seq or 0) > self.unkeyed_until \
            else "no keyed row vouches for them yet"
        return [f"seq 1 to {self.unkeyed_until} are linked by plain SHA-256 (sealed before keyed links); {vouched}"]


_COLUMNS = (AuditEvent.id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action,
            AuditEvent.episode_id, AuditEvent.detail, AuditEvent.prev_hash, AuditEvent.row_hash,
            AuditEvent.link_kind)


def verify_chain(db: Database, batch_size: int = 1000, *,
                 after: tuple[int, str, int] | None = None) -> ChainReport:
    """Walk the chain by seq, recomputing every hash (keyed with `db.audit_key`) and every link.

    Reads `batch_size` rows per short transaction, so the trail is never loaded at once and
    writers are not held up while a long trail is checked. `after` = (seq, hash, unkeyed_until)
    of a checked checkpoint starts the walk just after it.
    """
    checked, seq, prev_hash, unkeyed_until = 0, 0, GENESIS, 0
    if after is not None:
        seq, prev_hash, unkeyed_until = after
    while True:
        with db.session() as session:
            rows = session.execute(select(*_COLUMNS).where(AuditEvent.seq > seq)
                                   .order_by(AuditEvent.seq).limit(batch_size)).all()
        for row in rows:
            checked += 1
            problem = _link_problem(row, seq, prev_hash, db.audit_key, keyed_seen=seq > unkeyed_until)
            if problem:
                return ChainReport(checked, seq or None, prev_hash, row.seq, row.id, problem,
                                   unkeyed_until=unkeyed_until)
            if (row.link_kind or SHA256_LINK) == SHA256_LINK:
                unkeyed_until = row.seq
            seq, prev_hash = row.seq, row.row_hash
        if len(rows) < batch_size:
            break
    return _outside_the_chain(db, checked, seq, prev_hash, unkeyed_until)


def _link_problem(row, previous_seq: int, previous_hash: str, key: bytes | None, keyed_seen: bool) -> str | None:
    if row.seq != previous_seq + 1:
        missing = f"seq {previous_seq + 1}" if row.seq == previous_seq + 2 \
            else f"seq {previous_seq + 1} to {row.seq - 1}"
        return f"row missing: {missing} not found (gap in seq)"
    kind = row.link_kind or SHA256_LINK
    if kind not in (SHA256_LINK, HMAC_LINK):
        return f"row changed: unknown link kind {kind!r}"
    if kind == SHA256_LINK and keyed_seen:
        # Old rows are no hiding place: once links are keyed, a plain hash is a rewrite without the key.
        return "row rewritten without the key: a plain SHA-256 link after keyed links"
    try:
        expected = hash_of(row, key)
    except AuditKeyUnavailable:
        return "cannot check a keyed link: no audit key (ECAF_AUDIT_KEY)"
    if expected != row.row_hash:
        if kind == HMAC_LINK:
            return ("row changed: its content does not match its keyed hash (or ECAF_AUDIT_KEY is not the key "
                    "the trail was sealed with)")
        return "row changed: its content does not match its hash"
    if row.prev_hash != previous_hash:
        return (f"link to previous broken: its prev_hash is not the hash of seq {previous_seq}"
                if previous_seq else "link to previous broken: the first row does not start the chain")
    return None


def _outside_the_chain(db: Database, checked: int, seq: int, prev_hash: str, unkeyed_until: int) -> ChainReport:
    """Rows written without a seq (behind the application's back) are not part of any chain."""
    with db.session() as session:
        count, first_id = session.execute(select(func.count(), func.min(AuditEvent.id))
                                          .where(AuditEvent.seq.is_(None))).one()
    if count:
        return ChainReport(checked, seq or None, prev_hash, None, first_id,
                           f"row outside the chain: {count} row(s) have no seq", unkeyed_until=unkeyed_until)
    return ChainReport(checked, seq or None, prev_hash if seq else None, unkeyed_until=unkeyed_until)
