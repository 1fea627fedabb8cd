"""Append-only audit trail. Callers pass the session of the change they record.

Rows are sealed into a hash chain at commit (`app.models.audit`); the database refuses to
change or remove them (`install_append_only`); `verify_chain` proves nobody did anyway.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.clock import now
from app.db import Database
from app.models import AuditEvent
from app.models.audit import GENESIS, chain_hash

# Who opened an episode: what its lead professional may see of its audit trail.
OPENED_ACTIONS = ("episode_viewed", "artefact_viewed", "episode_printed", "episode_pdf_downloaded",
                  "episode_exported", "subject_access_export", "attachment_downloaded")


def record(session: Session, action: str, *, actor_id: int | None = None,
           episode_id: int | None = None, **detail) -> AuditEvent:
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

    @property
    def intact(self) -> bool:
        return self.problem is None

    def lines(self) -> list[str]:
        found = [f"checked {self.checked} rows"]
        if self.intact:
            head = f" (last seq {self.last_seq}, hash {self.last_hash})" if self.last_seq else ""
            return found + [f"audit trail intact{head}"]
        where = f"seq {self.broken_seq} (id {self.broken_id})" if self.broken_seq is not None \
            else f"id {self.broken_id}"
        return found + [f"audit trail broken at {where}: {self.problem}"]


_COLUMNS = (AuditEvent.id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action,
            AuditEvent.episode_id, AuditEvent.detail, AuditEvent.prev_hash, AuditEvent.row_hash)


def verify_chain(db: Database, batch_size: int = 1000) -> ChainReport:
    """Walk the chain by seq, recomputing every hash and checking every link.

    Reads `batch_size` rows per short transaction, so the trail is never loaded at once and
    writers are not held up while a long trail is checked.
    """
    checked, seq, prev_hash = 0, 0, GENESIS
    while True:
        with db.session() as session:
            rows = session.execute(select(*_COLUMNS).where(AuditEvent.seq > seq)
                                   .order_by(AuditEvent.seq).limit(batch_size)).all()
        for row in rows:
            checked += 1
            problem = _link_problem(row, seq, prev_hash)
            if problem:
                return ChainReport(checked, seq or None, prev_hash, row.seq, row.id, problem)
            seq, prev_hash = row.seq, row.row_hash
        if len(rows) < batch_size:
            break
    return _outside_the_chain(db, checked, seq, prev_hash)


def _link_problem(row, previous_seq: int, previous_hash: str) -> str | None:
    if row.seq != previous_seq + 1:
        missing = f"seq {previous_seq + 1}" if row.seq == previous_seq + 2 \
            else f"seq {previous_seq + 1} to {row.seq - 1}"
        return f"row missing: {missing} not found (gap in seq)"
    if chain_hash(row.seq, row.at, row.actor_id, row.action, row.episode_id, row.detail,
                  row.prev_hash) != row.row_hash:
        return "row changed: its content does not match its hash"
    if row.prev_hash != previous_hash:
        return (f"link to previous broken: its prev_hash is not the hash of seq {previous_seq}"
                if previous_seq else "link to previous broken: the first row does not start the chain")
    return None


def _outside_the_chain(db: Database, checked: int, seq: int, prev_hash: str) -> ChainReport:
    """Rows written without a seq (behind the application's back) are not part of any chain."""
    with db.session() as session:
        count, first_id = session.execute(select(func.count(), func.min(AuditEvent.id))
                                          .where(AuditEvent.seq.is_(None))).one()
    if count:
        return ChainReport(checked, seq or None, prev_hash, None, first_id,
                           f"row outside the chain: {count} row(s) have no seq")
    return ChainReport(checked, seq or None, prev_hash if seq else None)
