"""Delivering outbox messages: to the local mailbox, an SMTP server, or the index endpoint.

Each message is delivered under a row lock and marked sent in the same transaction, so two
deliverers never send it twice; its idempotency key travels with it (Message-ID header,
Idempotency-Key header) so a receiver can drop a repeat after a crash between send and commit.
"""
from __future__ import annotations

import json
import smtplib
import urllib.request
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select

from app.clock import now
from app.config import Config
from app.db import Database
from app.models import MailboxMessage, OutboxMessage

BACKOFF_SECONDS = (10, 60, 300, 900, 3600, 3 * 3600)


class DeliveryFailed(Exception):
    """The channel refused the message; it stays pending and is retried later."""


def _send_email(config: Config, message: OutboxMessage, session) -> None:
    if not config.smtp_host:
        session.add(MailboxMessage(outbox_id=message.id, recipient=message.recipient, subject=message.subject,
                                   body=message.body, delivered_at=now()))
        return
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = config.mail_from, message.recipient, message.subject
    email["Message-ID"] = f"<{message.idempotency_key.replace(':', '.')}@ecaf>"
    email.set_content(message.body)
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=20) as smtp:
        smtp.send_message(email)


def _send_index_notice(config: Config, message: OutboxMessage, session) -> None:
    request = urllib.request.Request(
        message.recipient, data=json.dumps(message.payload or {}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key})
    with urllib.request.urlopen(request, timeout=20) as response:
        if response.status >= 300:
            raise DeliveryFailed(f"index endpoint answered {response.status}")


CHANNELS = {"email": _send_email, "index": _send_index_notice}


def deliver(db: Database, config: Config, message_id: int) -> str:
    """Deliver one message if it is still pending. Returns its status afterwards.

    Raises DeliveryFailed after recording the failure, so a job runner can retry."""
    with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.id == message_id)
        if db.is_postgresql:
            query = query.with_for_update()
        message = session.scalar(query)
        if message is None:
            return "missing"
        if message.status != "pending":
            return message.status  # already sent (or given up): never twice
        message.attempts += 1
        try:
            CHANNELS[message.channel](config, message, session)
        except Exception as exc:  # any failure of the channel: record it, retry later
            failure = f"{type(exc).__name__}: {exc}"
        else:
            message.status, message.sent_at, message.last_error = "sent", now(), None
            return message.status
        message.last_error = failure
        if message.attempts >= config.outbox_max_attempts:
            message.status = "failed"
            return message.status
        delay = BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS)) - 1]
        message.next_attempt_at = now() + timedelta(seconds=delay)
    raise DeliveryFailed(f"message {message_id} not delivered (attempt {message.attempts}): {failure}")


def due_messages(db: Database, limit: int = 500) -> list[int]:
    with db.session() as session:
        return list(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now())
            .order_by(OutboxMessage.next_attempt_at).limit(limit)))
