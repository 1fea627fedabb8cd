"""Messages written outside a workflow step (account emails, answers to search requests).

Like a step's messages they are rows written in the caller's transaction, delivered by the same
jobs after commit, with an idempotency key so a retried request never sends twice.
"""
from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.clock import as_utc, now
from app.models import OutboxMessage

# Not delivered yet: waiting for a try, or `sending` (claimed by a deliverer whose call may be
# under way; past its claim, the outcome of that call is unknown until the next try finds out).
UNSENT = ("pending", "sending")


def queue_email(session: Session, *, kind: str, recipient: str, subject: str, body: str, key: str,
                episode_id: int | None = None) -> OutboxMessage:
    """Queue an email; `key` names the event (e.g. "password-reset:42") so it is queued once."""
    message_id, _ = write_once(session, episode_id=episode_id, channel="email", kind=kind, recipient=recipient,
                               subject=subject, body=body, idempotency_key=key)
    return session.get(OutboxMessage, message_id)


def _write_once_statement(dialect: str):
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, built once per dialect."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = OutboxMessage.__table__
    return insert(table).on_conflict_do_nothing(index_elements=[table.c.idempotency_key]).returning(table.c.id)


_WRITE_ONCE = {dialect: _write_once_statement(dialect) for dialect in ("postgresql", "sqlite")}
_EARLIER = select(OutboxMessage.__table__.c.id).where(
    OutboxMessage.__table__.c.idempotency_key == bindparam("idempotency_key"))


def write_once(session: Session, **values) -> tuple[int, bool]:
    """(the id of the message with this `idempotency_key`, whether it was written now): a message an
    earlier try wrote stays as it is.

    One INSERT ... ON CONFLICT DO NOTHING (PostgreSQL and SQLite alike), on the table rather than
    through the ORM, instead of a look then a write: a deadline sweep writes thousands, and two
    concurrent writers of one key cannot both win."""
    moment = now()
    if values.get("payload") is None:
        values.pop("payload", None)  # SQL NULL, as the column's default, not JSON null
    row = {"status": "pending", "attempts": 0, "next_attempt_at": moment, "created_at": moment, **values}
    written = session.execute(_WRITE_ONCE[session.get_bind().dialect.name], row).scalar()
    if written is not None:
        return written, True
    return session.execute(_EARLIER, {"idempotency_key": values["idempotency_key"]}).scalar(), False


def deliver_soon(runtime, message_ids: list[int]) -> None:
    """After the commit: ask the background jobs to deliver now (the sweep catches anything missed)."""
    dispatcher = runtime.engine.dispatcher
    if dispatcher is not None and message_ids:
        try:
            dispatcher.messages_queued(message_ids)
        except Exception:  # noqa: BLE001 - the sweep delivers what a lost wake-up would have
            pass


def retry_message(session: Session, message: OutboxMessage) -> None:
    """An undeliverable message goes back to the queue, with its attempts counted afresh."""
    session.refresh(message, with_for_update=True)  # as it is now, and no deliverer's claim meanwhile
    if message.status not in ("failed", "discarded"):
        raise ValueError("Only a message that could not be delivered can be sent again")
    message.status, message.attempts, message.next_attempt_at, message.last_error = "pending", 0, now(), None


def discard_message(session: Session, message: OutboxMessage) -> None:
    session.refresh(message, with_for_update=True)  # as it is now, and no deliverer's claim meanwhile
    if message.status not in ("failed", *UNSENT):
        raise ValueError("Only a message not yet delivered can be discarded")
    if message.status == "sending" and message.next_attempt_at is not None and as_utc(message.next_attempt_at) > now():
        # Discarding it now could not stop the call under way, and would hide whether it went.
        raise ValueError(f"The message is being sent at this moment: look again after "
                         f"{as_utc(message.next_attempt_at):%H:%M} UTC, when the outcome is known")
    message.status = "discarded"
