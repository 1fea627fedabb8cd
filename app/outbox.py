"""Messages written outside a workflow step (account emails, answers to search requests).

Like a step's messages they are rows written in the caller's transaction, delivered by the same
jobs after commit, with an idempotency key so a retried request never sends twice.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import as_utc, now
from app.models import OutboxMessage

# Not delivered yet: waiting for a try, or `sending` (claimed by a deliverer whose call may be
# under way; past its claim, the outcome of that call is unknown until the next try finds out).
UNSENT = ("pending", "sending")


def queue_email(session: Session, *, kind: str, recipient: str, subject: str, body: str, key: str,
                episode_id: int | None = None) -> OutboxMessage:
    """Queue an email; `key` names the event (e.g. "password-reset:42") so it is queued once."""
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return existing
    message = OutboxMessage(episode_id=episode_id, channel="email", kind=kind, recipient=recipient, subject=subject,
                            body=body, payload=None, idempotency_key=key, status="pending", attempts=0,
                            next_attempt_at=now(), created_at=now())
    session.add(message)
    session.flush()
    return message


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
