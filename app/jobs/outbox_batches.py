"""Delivering the due outbox in batches: the same three steps as one message (app/jobs/delivery.py),
each done once for many messages.

1. claim: one transaction locks up to BATCH due messages (FOR UPDATE SKIP LOCKED on PostgreSQL, so
   several deliverers share the outbox and none waits on another's batch) and claims each as
   `delivery.claim_row` does, with a lease that covers the calls of the messages before it on its
   route (the mailbox's are written and sent right there);
2. send, holding nothing: the messages of an SMTP route go over one connection (one the server
   ended after a few messages is replaced, and the message sent again over the new one), the others
   one call each; once a route fails as a whole (its breaker holds it), the rest of its messages are
   not tried, nor is a message whose lease has no room left for its calls and their recording;
3. record, as the outcomes come: one transaction per route writes its outcomes, each only under its
   own claim, and gives the messages not tried back (pending, their attempt not counted); sooner,
   whenever the next call could outlast the lease of an outcome not yet recorded (a slow channel).
   A fault in one message's bookkeeping loses only that message's outcome (a savepoint each).

Never twice holds as for one message: a claimed row is `sending`, which no other deliverer takes
before its lease runs out, and an outcome is recorded only while its claim stands.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select

from app import metrics
from app.clock import now
from app.config import Config
from app.db import Database
from app.engine.step_retries import is_connection_error
from app.models import OutboxMessage
from app.outbox import UNSENT

from . import channels
from .channels import breaker, smtp
from .delivery import (_Attempt, _Claim, _first_line, claim_row, not_tried_because, record_row, said_recovering,
                       send_claimed, send_seconds, wake_route)

log = logging.getLogger(__name__)
BATCH = 50
_NOT_TRIED = object()  # the outcome of a claimed message the deliverer did not send
# What recording an outcome may take, out of its claim's lease: a call is begun only if it and this
# fit in the lease, and outcomes not yet recorded are recorded before a call that could outlast them.
RECORD_SECONDS = 10


@dataclass
class BatchReport:
    delivered: int = 0
    undelivered: int = 0
    claimed: int = 0


def deliver_due(db: Database, config: Config, stop=None, limit: int = BATCH) -> BatchReport:
    """Deliver every message whose next try is due, a batch at a time. `stop` (an Event) ends it
    between two batches."""
    report = BatchReport()
    while stop is None or not stop.is_set():
        claimed = _claim_batch(db, config, limit)
        if not claimed:
            return report
        report.claimed += len(claimed)
        attempts, woken = _send_and_record(db, config, claimed)
        for attempt in attempts:
            if attempt.result == "sent":
                report.delivered += 1
            elif attempt.result is not None:
                report.undelivered += 1
        if len(claimed) < limit and not woken:
            return report
    return report


def _claim_batch(db: Database, config: Config, limit: int) -> list[_Claim | _Attempt]:
    with db.session() as session:
        query = (select(OutboxMessage)
                 .where(OutboxMessage.status.in_(UNSENT),
                        or_(OutboxMessage.next_attempt_at <= now(), OutboxMessage.next_attempt_at.is_(None)))
                 .order_by(OutboxMessage.next_attempt_at, OutboxMessage.attempts, OutboxMessage.id).limit(limit))
        if db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        before = Counter()  # messages of each route claimed ahead of this one: its lease covers their calls
        claimed = []
        for message in session.scalars(query):
            route = channels.route_of(config, message)
            claimed.append(claim_row(session, config, message, before[route]))
            before[route] += 1
    for claim in claimed:
        said_recovering(claim)
    return claimed


def _send_and_record(db: Database, config: Config, claimed: list[_Claim | _Attempt]) -> tuple[list[_Attempt], int]:
    """The batch's attempts, and how many messages a route that answered again made due (held
    back by its failure: the next batch sends them)."""
    done = [c for c in claimed if isinstance(c, _Attempt)]  # the mailbox's, deferred ones and the like
    routes: dict[str, list[_Claim]] = {}
    for claim in claimed:
        if isinstance(claim, _Claim):
            routes.setdefault(claim.route, []).append(claim)
    recorded = [attempt for route, claims in routes.items() for attempt in _send_route(db, config, route, claims)]
    for attempt in done + recorded:
        if attempt.result in ("sent", "retry", "failed"):
            metrics.delivery_attempted(attempt.channel, attempt.result)
        if attempt.result == "failed":
            log.warning("a message (%s) failed after %s attempts, not retried: %s", attempt.channel,
                        attempt.attempts, attempt.reason)
        elif attempt.result == "retry":
            log.warning("a message (%s) was not delivered (attempt %s), will be tried again: %s", attempt.channel,
                        attempt.attempts, attempt.reason)
    woken = 0
    for route in {a.route for a in done + recorded if a.result == "sent" and a.route}:
        try:
            woken += wake_route(db, config, route)
        except Exception:  # noqa: BLE001 - the held messages still go at their own time
            log.exception("could not wake the messages %s held back", route)
    return done + recorded, woken


def _send_route(db: Database, config: Config, route: str, claims: list[_Claim]) -> list[_Attempt]:
    """Send the route's claims in turn (an SMTP route over one connection) and record the outcomes
    as they come: at the end of the route, and sooner whenever the next call could outlast the
    lease of an outcome not yet recorded (so no other deliverer takes a sent message back)."""
    recorded: list[_Attempt] = []
    unrecorded: list[tuple[_Claim, object]] = []
    connection = smtp.Connection(config) if route.startswith("email:smtp:") else None
    try:
        for claim in claims:
            outcome = _NOT_TRIED
            for _ in range(2):  # a second time only when a used SMTP connection was spent before the message went
                seconds = send_seconds(config, route, connected=connection is not None and connection.open)
                if any(not _leaves(c, seconds) for c, _ in unrecorded):
                    recorded += _record_batch(db, config, unrecorded)
                    unrecorded = []
                if breaker.held(route, config.outbox_max_backoff_seconds) is not None or not _leaves(claim, seconds):
                    outcome = _NOT_TRIED  # the route failed meanwhile, or its lease has no room for the call
                    break
                outcome = send_claimed(config, claim, connection)
                if not isinstance(outcome, smtp.ConnectionSpent):
                    break
                log.info("message %s: %s; sending it over a new connection", claim.message.id, outcome.reason)
            unrecorded.append((claim, outcome))
    finally:
        try:
            if unrecorded:
                recorded += _record_batch(db, config, unrecorded)
        finally:
            if connection is not None:
                connection.close()
    return recorded


def _leaves(claim: _Claim, seconds: float) -> bool:
    """Whether the claim's lease outlasts a call of `seconds` begun now, and then recording it."""
    return now() + timedelta(seconds=seconds + RECORD_SECONDS) <= claim.lease_until


def _record_batch(db: Database, config: Config, outcomes: list[tuple[_Claim, object]]) -> list[_Attempt]:
    """Step 3 for these outcomes, in one transaction; if that fails (a connection cut, a fault in one
    message's bookkeeping), once more with each outcome in a savepoint of its own, so a fault loses
    only its own message's outcome: that message stays `sending` until its lease runs out and is
    then recovered as after a deliverer's death."""
    try:
        with db.session() as session:
            rows = _locked(db, session, outcomes)
            return [_record_one(config, claim, rows.get(claim.message.id), outcome) for claim, outcome in outcomes]
    except Exception as error:  # noqa: BLE001 - said here; each on its own below
        log.warning("the outcomes of %d messages could not be recorded together (%s); recording each on its own",
                    len(outcomes), type(error).__name__)
    try:
        with db.session() as session:
            rows, attempts = _locked(db, session, outcomes), []
            for claim, outcome in outcomes:
                try:
                    with session.begin_nested():
                        attempts.append(_record_one(config, claim, rows.get(claim.message.id), outcome))
                except Exception as error:  # noqa: BLE001 - this message's lease takes care of it
                    if is_connection_error(error):
                        raise
                    log.error("message %s (%s): its outcome could not be recorded (%s: %s); it is looked at again "
                              "once its claim runs out at %s UTC", claim.message.id, claim.message.channel,
                              type(error).__name__, error, f"{claim.lease_until:%H:%M:%S}")
            return attempts
    except Exception as error:  # noqa: BLE001 - the leases take care of the rest
        log.error("the outcomes of %d messages could not be recorded (%s); each is looked at again once its "
                  "claim runs out (Notify is asked first; the index and SMTP get the same key)", len(outcomes),
                  type(error).__name__)
    return []


def _locked(db: Database, session, outcomes: list[tuple[_Claim, object]]) -> dict[int, OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.id.in_([c.message.id for c, _ in outcomes]))
    if db.is_postgresql:
        query = query.with_for_update()
    return {m.id: m for m in session.scalars(query)}


def _record_one(config: Config, claim: _Claim, message: OutboxMessage | None, outcome: object) -> _Attempt:
    if outcome is _NOT_TRIED:
        return _give_back(config, claim, message)
    return record_row(config, claim, message, outcome)


def _give_back(config: Config, claim: _Claim, message: OutboxMessage | None) -> _Attempt:
    """A claimed message that was not tried: pending again, its attempt not counted, due when its
    route's wait is over (now, if it was only late)."""
    if message is None or message.status != "sending" or message.attempts != claim.message.attempts:
        return _Attempt(message.status if message else "missing", channel=claim.message.channel, route=claim.route)
    failing = breaker.held(claim.route, config.outbox_max_backoff_seconds)
    message.attempts -= 1
    message.status = "sending" if claim.recovering else "pending"  # an unknown outcome stays one
    message.next_attempt_at = failing.until if failing is not None else now()
    if failing is not None:
        message.last_error = not_tried_because(failing)
    return _Attempt(message.status, "deferred", message.channel, attempts=message.attempts,
                    reason=_first_line(message.last_error), route=claim.route)
