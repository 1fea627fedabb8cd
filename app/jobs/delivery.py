"""Delivering outbox messages through their channel (app/jobs/channels/), retrying what fails.

Three short steps, so no transaction or row lock is ever held over the network (a hanging mail
server blocks no web request on SQLite, and no deliverer queues behind another's call):
1. claim: one transaction locks the row (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite begins
   IMMEDIATE), checks it still waits and is due, and marks it `sending` with a lease
   (next_attempt_at = now + the longest its channel's calls can take + a margin), attempts + 1;
2. send, holding nothing;
3. record: a new transaction marks it sent, pending again (with its next try) or failed, only if
   it is still `sending` under this claim (same attempts): a claim taken over records nothing.

Never twice: a second deliverer finds the row `sending` and leaves it. A row still `sending` when
its lease runs out (its deliverer died mid-call, or the record step failed) has an unknown
outcome, and the next claim recovers it: Notify is asked first whether it has the message's
reference (marked sent if so); the index gets the notice again with the same Idempotency-Key and
SMTP the email with the same Message-ID, by which receivers must drop repeats (at-least-once).
A Notify call that got no answer keeps its message `sending` until the next try, which asks first.

Retries: a failure makes the message due again after 2, 5, 10, 20 ... seconds, never more than
ECAF_OUTBOX_MAX_BACKOFF (Retry-After honoured up to that cap). A fault of the channel (no answer,
5xx, 429, a key or address that is wrong) never gives a message up: it waits for the channel. A
passing fault of this one message (one mailbox busy) gives it up only once its attempts
(outbox_max_attempts) are spent and it is older than GIVE_UP_AFTER. A refusal of the message
(400, 413, 422, an SMTP 5xx) fails it at once with the reason; an administrator can send it again.

A channel that fails as a whole is left alone until its wait is over (channels/breaker.py):
messages due meanwhile are put back to then without a try, so a hanging server costs one timeout
per wait, not one per message. When a route accepts a message, the messages of that route held
back by its failure (marked HELD_WITH_CHANNEL; not those one recipient deferred, nor those a
Retry-After holds) are made due and sent at once, so a backlog goes within seconds of recovery.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from app import metrics
from app.clock import as_utc, now
from app.config import Config
from app.db import Database
from app.models import OutboxMessage
from app.outbox import UNSENT

from . import channels
from .channels import Refused, Transient, breaker, mailbox

log = logging.getLogger(__name__)

BACKOFF_SECONDS = (2, 5, 10, 20, 30, 60)  # then the last, always capped by outbox_max_backoff_seconds
GIVE_UP_AFTER = timedelta(days=1)
# After a channel comes back, one deliverer sends at most this much of the backlog at once; the
# rest is already due and goes with the next deliveries or the sweep.
BACKLOG_BATCH = 200
BACKLOG_SECONDS = 30.0
BACKLOG_FAILURES = 3  # in a row: the channel is failing again, the rest wait their turn
WAKE_LIMIT = 2000  # messages made due at once when a channel answers again; the rest keep their (short) wait
# A claim's lease: the longest its calls can take, and a margin for a slow worker.
LEASE_MARGIN_SECONDS = 30
SMTP_EXCHANGES = 8  # greeting, EHLO, MAIL, RCPT, DATA, the message, QUIT: each may wait the read timeout
SMTP_EXCHANGES_PER_MESSAGE = 4  # each further message over the same connection: MAIL, RCPT, DATA, the message
HTTP_CALLS = 2  # Notify: asking whether it has the message, then sending it
# The second line of a message's last_error while its channel's failure holds it back (the first
# is the reason pages show): it is woken as soon as that channel takes another message.
HELD_WITH_CHANNEL = "\nThe channel itself failed: this message goes as soon as the channel answers again."


class DeliveryFailed(Exception):
    """The channel did not take the message; it stays pending and is retried later."""


class DeliveryDeferred(DeliveryFailed):
    """Not even tried: its channel failed a moment ago and is left alone until its wait is over, or
    its own next try is not due yet (a caller may log these quietly: the failure itself was logged
    once, by the try that failed)."""


@dataclass
class _Attempt:
    status: str  # the message's status afterwards (or "missing")
    result: str | None = None  # sent, retry, failed (counted); deferred, waiting (not tried); None
    channel: str | None = None
    reason: str | None = None
    attempts: int = 0
    route: str | None = None


@dataclass
class _Claim:
    message: OutboxMessage  # as claimed, detached from its session
    route: str
    recovering: bool  # it was `sending` with its lease run out: an earlier call's outcome is unknown
    lease_until: datetime


def backoff_seconds(config: Config, attempts: int, retry_after: float | None = None) -> float:
    """How long to wait after the `attempts`-th failed try."""
    delay = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, config.outbox_max_backoff_seconds)


def send_seconds(config: Config, route: str, connected: bool = False) -> float:
    """The longest one message's calls can take (`connected`: over an SMTP connection already open)."""
    connect, read = config.channel_connect_timeout_seconds, config.channel_read_timeout_seconds
    if route.startswith("email:smtp:"):
        return SMTP_EXCHANGES_PER_MESSAGE * read if connected else connect + SMTP_EXCHANGES * read
    return HTTP_CALLS * (connect + read)


def lease_seconds(config: Config, route: str, position: int = 0) -> float:
    """How long a claim holds a message: past it, its deliverer is taken to have died. `position`
    messages go before it in the same batch (over one SMTP connection), each within its own calls."""
    first = send_seconds(config, route)
    later = send_seconds(config, route, connected=route.startswith("email:smtp:"))
    return first + position * later + LEASE_MARGIN_SECONDS


def gives_up(config: Config, message: OutboxMessage) -> bool:
    """A passing fault of one message ends its retries only after enough attempts AND enough time."""
    return (message.attempts >= config.outbox_max_attempts
            and now() - as_utc(message.created_at) >= GIVE_UP_AFTER)


def deliver(db: Database, config: Config, message_id: int) -> str:
    """Deliver one message if it still waits and is due. Returns its status afterwards.

    Raises DeliveryFailed after recording a failure that will be retried, DeliveryDeferred when
    it was not tried (its channel's wait, or its own next try, is not over)."""
    attempt = _deliver_one(db, config, message_id)
    if attempt.result == "sent":
        _after_success(db, config, attempt.route)
    if attempt.result == "retry":
        raise DeliveryFailed(f"message {message_id} ({attempt.channel}) not delivered (attempt {attempt.attempts}), "
                             f"will be tried again: {attempt.reason}")
    if attempt.result in ("deferred", "waiting"):
        raise DeliveryDeferred(f"message {message_id} ({attempt.channel}) {attempt.reason}")
    return attempt.status


def due_messages(db: Database, limit: int = 500) -> list[int]:
    """Messages whose next try is due, and those `sending` whose claim ran out (to be recovered)."""
    with db.session() as session:
        return list(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status.in_(UNSENT),
                                           or_(OutboxMessage.next_attempt_at <= now(),
                                               OutboxMessage.next_attempt_at.is_(None)))
            # The least tried first: after a channel's wait, one message that always fails is not its only try.
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.attempts, OutboxMessage.id).limit(limit)))


def _deliver_one(db: Database, config: Config, message_id: int) -> _Attempt:
    claimed = _claim(db, config, message_id)
    attempt = _send_and_record(db, config, claimed) if isinstance(claimed, _Claim) else claimed
    # Counted once the outcome is recorded: a record that failed attempted nothing that counts.
    if attempt.result in ("sent", "retry", "failed"):
        metrics.delivery_attempted(attempt.channel, attempt.result)
    if attempt.result == "failed":
        log.warning("message %s (%s) failed after %s attempts, not retried: %s", message_id, attempt.channel,
                    attempt.attempts, attempt.reason)
    return attempt


def _claim(db: Database, config: Config, message_id: int) -> _Claim | _Attempt:
    """Step 1: mark the message `sending` under a lease, in a transaction of its own."""
    with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.id == message_id)
        if db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        message = session.scalar(query)
        if message is None:  # on PostgreSQL, also a row another deliverer is claiming this instant
            held = db.is_postgresql and session.scalar(select(OutboxMessage.id).where(OutboxMessage.id == message_id))
            return _Attempt("sending" if held else "missing")
        claimed = claim_row(session, config, message)
    said_recovering(claimed)
    return claimed


def claim_row(session, config: Config, message: OutboxMessage, position: int = 0) -> _Claim | _Attempt:
    """Claim one message the caller has locked in `session`, if it still waits and is due.
    `position`: how many messages of its route go before it over the same connection (its lease
    is longer by their calls)."""
    if message.status not in UNSENT:
        return _Attempt(message.status)  # sent, given up or discarded: never again by itself
    if message.next_attempt_at is not None and as_utc(message.next_attempt_at) > now():
        if message.status == "sending":
            return _Attempt("sending")  # another deliverer's claim: its call may be under way
        return _Attempt("pending", "waiting", message.channel, attempts=message.attempts,
                        reason=f"waits for its next try at {as_utc(message.next_attempt_at):%H:%M:%S} UTC"
                               + (f": {_first_line(message.last_error)}" if message.last_error else ""))
    route = channels.route_of(config, message)
    failing = breaker.held(route, config.outbox_max_backoff_seconds)
    if failing is not None:  # the channel failed a moment ago: wait with it, without a try
        if message.next_attempt_at is None or as_utc(message.next_attempt_at) < failing.until:
            message.next_attempt_at = failing.until
        message.last_error = not_tried_because(failing)
        return _Attempt(message.status, "deferred", message.channel, attempts=message.attempts,
                        reason=_first_line(message.last_error), route=route)
    message.attempts += 1
    if channels.is_local(config, message):  # the mailbox: a row in this very transaction, no network
        mailbox.send(config, message, session)
        message.status, message.sent_at, message.last_error = "sent", now(), None
        return _Attempt("sent", "sent", message.channel, attempts=message.attempts, route=route)
    recovering = message.status == "sending"
    lease_until = now() + timedelta(seconds=lease_seconds(config, route, position))
    message.status, message.next_attempt_at = "sending", lease_until
    return _Claim(message, route, recovering, lease_until)


def not_tried_because(failing) -> str:
    """A message's last_error when it was not tried because its channel (breaker.held) had failed."""
    return (f"not tried: the channel has failed since {as_utc(failing.since):%H:%M:%S} UTC, next try at "
            f"{as_utc(failing.until):%H:%M:%S}: {failing.reason}" + ("" if failing.asked_to_wait else HELD_WITH_CHANNEL))


def said_recovering(claimed: _Claim | _Attempt) -> None:
    if isinstance(claimed, _Claim) and claimed.recovering:
        log.info("message %s (%s): the outcome of its last try is unknown; %s", claimed.message.id,
                 claimed.message.channel, "asking GOV.UK Notify first" if claimed.route.startswith("email:notify:")
                 else "sending it again with the same key, for the receiver to drop a repeat")


def _send_and_record(db: Database, config: Config, claim: _Claim) -> _Attempt:
    """Step 2, holding no transaction, then step 3."""
    message, outcome = claim.message, send_claimed(config, claim)
    try:
        return _record(db, config, claim, outcome)
    except Exception as first:  # noqa: BLE001 - e.g. a connection cut: once more, on a fresh one
        log.warning("message %s (%s): the outcome could not be recorded (%s); trying once more", message.id,
                    message.channel, type(first).__name__)
    try:
        return _record(db, config, claim, outcome)
    except Exception as exc:
        what = "sent" if outcome is None else f"not delivered ({_first_line(str(outcome))})"
        then = ("GOV.UK Notify is asked whether it has it before any new try" if claim.route.startswith("email:notify:")
                else "if it is sent again, it carries the same key for the receiver to drop the repeat")
        raise DeliveryFailed(
            f"message {message.id} ({message.channel}) was {what}, but that could not be recorded "
            f"({type(exc).__name__}); it is looked at again once its claim runs out at "
            f"{claim.lease_until:%H:%M:%S} UTC: {then}") from exc


def send_claimed(config: Config, claim: _Claim, connection=None) -> Exception | None:
    """Step 2: hand the claimed message to its channel (over `connection`, an open SMTP session,
    when given), holding no transaction. Returns None when it was taken, else what went wrong."""
    message, outcome = claim.message, None
    try:
        if connection is not None:
            connection.send(message)
        elif channels.send(config, message, recovering=claim.recovering) == "found":
            log.info("message %s (%s): GOV.UK Notify already has it (an earlier try's answer was lost): not sent "
                     "again", message.id, message.channel)
    except (Refused, Transient) as exc:
        outcome = exc
    except Exception as exc:  # noqa: BLE001 - any other fault of the channel: recorded, retried later
        outcome = Transient(f"{type(exc).__name__}: {exc}", whole_channel=False)
    _tell_breaker(config, claim.route, outcome)
    return outcome


def _tell_breaker(config: Config, route: str, outcome: Exception | None) -> None:
    if outcome is None:
        breaker.answered(route)
    elif isinstance(outcome, Transient) and outcome.whole_channel:
        breaker.failed(route, outcome.reason, backoff_seconds(config, breaker.failures(route) + 1, outcome.retry_after),
                       asked_to_wait=outcome.retry_after is not None)


def _record(db: Database, config: Config, claim: _Claim, outcome: Exception | None) -> _Attempt:
    """Step 3: the outcome, if the message is still `sending` under this claim."""
    with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.id == claim.message.id)
        if db.is_postgresql:
            query = query.with_for_update()
        return record_row(config, claim, session.scalar(query), outcome)


def record_row(config: Config, claim: _Claim, message: OutboxMessage | None, outcome: Exception | None) -> _Attempt:
    """The outcome of a try on the message as now locked in the caller's transaction, if it is
    still `sending` under this claim (a claim taken over records nothing)."""
    claimed = claim.message
    if message is None or message.status != "sending" or message.attempts != claimed.attempts:
        meanwhile = ("was taken over by another deliverer after its claim ran out" if message is not None
                     and message.status == "sending" else f"is {message.status if message else 'gone'} meanwhile")
        log.warning("message %s (%s): try %s ended (%s), but the message %s; that outcome stands", claimed.id,
                    claimed.channel, claimed.attempts, "sent" if outcome is None else _first_line(str(outcome)),
                    meanwhile)
        return _Attempt(message.status if message else "missing", channel=claimed.channel, route=claim.route)
    attempt = _Attempt("sending", channel=message.channel, attempts=message.attempts, route=claim.route)
    if outcome is None:
        attempt.result = "sent"
        message.status, message.sent_at, message.last_error = "sent", now(), None
    elif isinstance(outcome, Refused):
        attempt.result, attempt.reason = "failed", outcome.reason
        message.status, message.last_error = "failed", f"refused: {outcome.reason}"
    else:
        _record_transient(config, message, outcome, attempt)
    attempt.status = message.status
    return attempt


def _record_transient(config: Config, message: OutboxMessage, outcome: Transient, attempt: _Attempt) -> None:
    attempt.reason = message.last_error = outcome.reason
    if outcome.whole_channel:  # the channel's fault: the message waits for it, never given up
        if outcome.retry_after is None:
            message.last_error += HELD_WITH_CHANNEL
    elif gives_up(config, message):
        attempt.result, message.status = "failed", "failed"
        message.last_error = f"given up after {message.attempts} attempts over {_age(message)}: {outcome.reason}"
        return
    attempt.result = "retry"
    # An answer that never came may mean Notify has it: the next try asks first.
    message.status = "sending" if outcome.unclear else "pending"
    message.next_attempt_at = now() + timedelta(seconds=backoff_seconds(config, message.attempts, outcome.retry_after))


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _age(message: OutboxMessage) -> str:
    hours = (now() - as_utc(message.created_at)).total_seconds() / 3600
    return f"{hours:.0f} hours"


def wake_route(db: Database, config: Config, route: str) -> int:
    """Make due now the waiting messages of the route that its failure held back. Returns how many.

    Not those one recipient deferred, nor those a Retry-After holds (not marked HELD_WITH_CHANNEL),
    nor another route's (another index host), nor any `sending` (a claim may be under way)."""
    channel = route.split(":", 1)[0]
    with db.session() as session:
        waiting = session.execute(
            select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.recipient)
            .where(OutboxMessage.status == "pending", OutboxMessage.channel == channel,
                   OutboxMessage.next_attempt_at > now(), OutboxMessage.last_error.like(f"%{HELD_WITH_CHANNEL}"))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(WAKE_LIMIT)).all()
        ids = [row.id for row in waiting if channels.route_for(config, row.channel, row.recipient) == route]
        if not ids:
            return 0
        # A row claimed meanwhile is `sending` by the time this sees it, and is left alone.
        result = session.execute(update(OutboxMessage)
                                 .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "pending",
                                        OutboxMessage.next_attempt_at > now())
                                 .values(next_attempt_at=now()).execution_options(synchronize_session=False))
        return result.rowcount or 0


def _after_success(db: Database, config: Config, route: str | None) -> None:
    """The route answers: messages its failure held back are tried now, not at their own time."""
    if route is None:
        return
    try:
        woken = wake_route(db, config, route)
        sent = send_backlog(db, config, route)
    except Exception:  # noqa: BLE001 - the message is sent; the backlog still goes at its own time
        log.exception("could not send the backlog of %s after a delivery", route)
        return
    if woken:  # only after a failure of the route held messages back: otherwise a busy but healthy channel
        log.info("%s answers again: %s waiting messages made due, %s sent at once", route, woken, sent)


def send_backlog(db: Database, config: Config, route: str) -> int:
    """Deliver the route's due messages, until a batch is done or the channel fails again (a few
    failures in a row: one message the receiver defers does not hold the rest). Returns how many were sent."""
    sent, failures, started = 0, 0, time.monotonic()
    channel = route.split(":", 1)[0]
    with db.session() as session:
        due = session.execute(
            select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.recipient)
            .where(OutboxMessage.status == "pending", OutboxMessage.channel == channel,
                   OutboxMessage.next_attempt_at <= now())
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.attempts, OutboxMessage.id)
            .limit(BACKLOG_BATCH)).all()
    for row in due:
        if failures >= BACKLOG_FAILURES or time.monotonic() - started > BACKLOG_SECONDS:
            break
        if channels.route_for(config, row.channel, row.recipient) != route:
            continue
        attempt = _deliver_one(db, config, row.id)
        if attempt.result == "sent":
            sent, failures = sent + 1, 0
        elif attempt.result == "deferred":
            break  # the channel failed again as a whole: the rest wait with it
        elif attempt.result == "retry":
            failures += 1
            log.warning("message %s (%s) not delivered, will be tried again: %s", row.id, channel, attempt.reason)
    return sent
