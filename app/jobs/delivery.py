"""Delivering outbox messages through their channel (app/jobs/channels/), retrying what fails.

Never twice: each message is delivered under a row lock and marked sent in the same transaction,
so two deliverers never both send it; its idempotency key travels with it (Message-ID,
Idempotency-Key, Notify's reference) so a receiver can drop a repeat after a crash between sending
and recording.

Retries: a transient failure (timeout, refused connection, 5xx, 429, SMTP 4xx) leaves the message
pending and due again after 2, 5, 10, 20 ... seconds, never more than ECAF_OUTBOX_MAX_BACKOFF
(Retry-After honoured up to that cap). It is given up (failed) only when both its attempts
(outbox_max_attempts) are spent and it is older than GIVE_UP_AFTER, so an outage of hours loses
nothing. A refusal that would repeat (a bad address, a key Notify does not know, 4xx) fails the
message at once, with the reason; an administrator can send it again from the operations page.

A channel that fails as a whole (no connection, no answer, 5xx, 429) is left alone until its own
wait is over (channels/breaker.py): messages due meanwhile are put back to then without a try, so
a hanging server costs one timeout per wait, not one per message.

Recovery: when a channel accepts a message, every pending message of that channel waiting for a
later try is made due now and delivered straight away, so after an outage the backlog goes out
within seconds of the channel answering, not each at its own backoff.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from app import metrics
from app.clock import as_utc, now
from app.config import Config
from app.db import Database
from app.models import OutboxMessage

from . import channels
from .channels import Refused, Transient, breaker

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (2, 5, 10, 20, 30, 60)  # then the last, always capped by outbox_max_backoff_seconds
GIVE_UP_AFTER = timedelta(days=1)
# After a channel comes back, one deliverer sends at most this much of the backlog at once; the
# rest is already due and goes with the next deliveries or the sweep.
BACKLOG_BATCH = 200
BACKLOG_SECONDS = 30.0
BACKLOG_FAILURES = 3  # in a row: the channel is failing again, the rest wait their turn


class DeliveryFailed(Exception):
    """The channel did not take the message; it stays pending and is retried later."""


class DeliveryDeferred(DeliveryFailed):
    """Not even tried: its channel failed a moment ago and is left alone until its wait is over (a
    caller may log these quietly: the failure itself was logged once, by the try that failed)."""


@dataclass
class _Attempt:
    status: str  # the message's status afterwards (or "missing", "busy")
    result: str | None = None  # sent, retry, failed; deferred (the channel is failing: not tried); None
    channel: str | None = None
    reason: str | None = None
    attempts: int = 0


def backoff_seconds(config: Config, attempts: int, retry_after: float | None = None) -> float:
    """How long to wait after the `attempts`-th failed try."""
    delay = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, config.outbox_max_backoff_seconds)


def gives_up(config: Config, message: OutboxMessage) -> bool:
    """A transient failure ends the retries only after enough attempts AND enough time."""
    return (message.attempts >= config.outbox_max_attempts
            and now() - as_utc(message.created_at) >= GIVE_UP_AFTER)


def deliver(db: Database, config: Config, message_id: int) -> str:
    """Deliver one message if it is still pending. Returns its status afterwards.

    Raises DeliveryFailed after recording a transient failure, so a job runner can retry."""
    attempt = _attempt(db, config, message_id)
    if attempt.result == "sent":
        _after_success(db, config, attempt.channel)
    if attempt.result == "retry":
        raise DeliveryFailed(f"message {message_id} ({attempt.channel}) not delivered (attempt {attempt.attempts}), "
                             f"will be tried again: {attempt.reason}")
    if attempt.result == "deferred":
        raise DeliveryDeferred(f"message {message_id} ({attempt.channel}) {attempt.reason}")
    return attempt.status


def due_messages(db: Database, limit: int = 500) -> list[int]:
    with db.session() as session:
        return list(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now())
            # The least tried first: after a channel's wait, one message that always fails is not its only try.
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.attempts, OutboxMessage.id).limit(limit)))


def _attempt(db: Database, config: Config, message_id: int, *, skip_locked: bool = False) -> _Attempt:
    with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.id == message_id)
        if db.is_postgresql:
            query = query.with_for_update(skip_locked=skip_locked)
        message = session.scalar(query)
        if message is None:
            return _Attempt("busy" if skip_locked and _exists(db, message_id) else "missing")
        if message.status != "pending":
            return _Attempt(message.status)  # already sent (or given up): never twice
        route = channels.route_of(config, message)
        failing = breaker.held(route, config.outbox_max_backoff_seconds)
        if failing is not None:  # the channel failed a moment ago: wait with it, without a try
            if message.next_attempt_at is None or as_utc(message.next_attempt_at) < failing.until:
                message.next_attempt_at = failing.until
            message.last_error = (f"not tried: the channel has failed since {failing.since:%H:%M:%S} UTC, next try "
                                  f"at {failing.until:%H:%M:%S}: {failing.reason}")
            return _Attempt("pending", "deferred", message.channel, attempts=message.attempts,
                            reason=message.last_error)
        message.attempts += 1
        attempt = _Attempt("pending", channel=message.channel, attempts=message.attempts)
        try:
            channels.send(config, message, session)
        except Refused as exc:
            attempt.result, attempt.reason = "failed", exc.reason
            message.status, message.last_error = "failed", f"refused: {exc.reason}"
        except Exception as exc:  # noqa: BLE001 - any other fault of the channel: record it, retry later
            transient = exc if isinstance(exc, Transient) else Transient(f"{type(exc).__name__}: {exc}",
                                                                         whole_channel=False)
            attempt.reason = message.last_error = transient.reason
            if transient.whole_channel:
                breaker.failed(route, transient.reason, backoff_seconds(
                    config, breaker.failures(route) + 1, transient.retry_after))
            if gives_up(config, message):
                attempt.result, message.status = "failed", "failed"
                message.last_error = (f"given up after {message.attempts} attempts over "
                                      f"{_age(message)}: {transient.reason}")
            else:
                attempt.result = "retry"
                message.next_attempt_at = now() + timedelta(
                    seconds=backoff_seconds(config, message.attempts, transient.retry_after))
        else:
            attempt.result = "sent"
            message.status, message.sent_at, message.last_error = "sent", now(), None
            breaker.answered(route)
        attempt.status = message.status
    # Counted once the outcome is recorded: a commit that failed attempted nothing that counts.
    metrics.delivery_attempted(attempt.channel, attempt.result)
    if attempt.result == "failed":
        log.warning("message %s (%s) failed after %s attempts, not retried: %s", message_id, attempt.channel,
                    attempt.attempts, attempt.reason)
    return attempt


def _exists(db: Database, message_id: int) -> bool:
    with db.session() as session:
        return session.get(OutboxMessage, message_id) is not None


def _age(message: OutboxMessage) -> str:
    hours = (now() - as_utc(message.created_at)).total_seconds() / 3600
    return f"{hours:.0f} hours"


def wake_channel(db: Database, channel: str) -> int:
    """Make every pending message of the channel that waits for a later try due now. Returns how many.

    Rows another deliverer holds are being tried already and are left alone (SKIP LOCKED)."""
    waiting = (select(OutboxMessage.id)
               .where(OutboxMessage.status == "pending", OutboxMessage.channel == channel,
                      OutboxMessage.next_attempt_at > now()))
    if db.is_postgresql:
        waiting = waiting.with_for_update(skip_locked=True)
    with db.session() as session:
        result = session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(waiting))
                                 .values(next_attempt_at=now()).execution_options(synchronize_session=False))
        return result.rowcount or 0


def _after_success(db: Database, config: Config, channel: str) -> None:
    """The channel answers: messages that failed on it before are tried now, not at their own time."""
    try:
        woken = wake_channel(db, channel)
        sent = send_backlog(db, config, channel)
    except Exception:  # noqa: BLE001 - the message is sent; the backlog still goes at its own time
        log.exception("could not send the %s backlog after a delivery", channel)
        return
    if woken or sent:
        log.info("%s answers again: %s waiting messages made due, %s sent at once", channel, woken, sent)


def send_backlog(db: Database, config: Config, channel: str) -> int:
    """Deliver the channel's due messages, until a batch is done or the channel
    fails again (a few failures in a row: one message the receiver defers does not hold the rest).
    Returns how many were sent."""
    sent, failures, started = 0, 0, time.monotonic()
    with db.session() as session:
        ids = list(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == "pending", OutboxMessage.channel == channel,
                                           OutboxMessage.next_attempt_at <= now())
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.attempts, OutboxMessage.id).limit(BACKLOG_BATCH)))
    for message_id in ids:
        if failures >= BACKLOG_FAILURES or time.monotonic() - started > BACKLOG_SECONDS:
            break
        attempt = _attempt(db, config, message_id, skip_locked=True)
        if attempt.result == "sent":
            sent, failures = sent + 1, 0
        elif attempt.result == "deferred":
            break  # the channel failed again as a whole: the rest wait with it
        elif attempt.result == "retry":
            failures += 1
            log.warning("message %s (%s) not delivered, will be tried again: %s", message_id, channel, attempt.reason)
    return sent
