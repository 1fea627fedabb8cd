"""The local mailbox: email kept in a table when neither Notify nor SMTP is configured.

The row is written in the deliverer's transaction, with the message marked sent: both or neither."""
from __future__ import annotations

from app.clock import now
from app.config import Config
from app.models import MailboxMessage, OutboxMessage


def send(config: Config, message: OutboxMessage, session) -> None:
    session.add(MailboxMessage(outbox_id=message.id, recipient=message.recipient, subject=message.subject,
                               body=message.body, delivered_at=now()))
