"""Where an outbox message goes: email through GOV.UK Notify, an SMTP server or the local mailbox;
index notices to the national index endpoint.

A channel either returns (the message was accepted) or raises one of two outcomes, so the
deliverer can tell a fault of the channel from a refusal of one message:
- Transient: timeouts, refused connections, 5xx, 408, 429, SMTP 4xx, and answers that say the
  channel's settings are wrong (401, 403, 404, a redirect, a Notify template that does not fit):
  retried; when the fault is the channel's, every message of the channel waits with it and
  nothing is given up, so a revoked key or a wrong address fails no message for good.
- Refused: the receiver said no to this message (400, 413, 422, an SMTP 5xx for the recipient
  or the message). It is marked failed with the reason; an administrator can send it again.
Every reason passes through redact.without_secrets: no URL's credentials or query reach a row,
a page or a log.
"""
from __future__ import annotations

from email.utils import parsedate_to_datetime

from app.clock import now
from app.config import Config
from app.models import OutboxMessage
from app.request_ids import acceptable

from .redact import host_of, without_secrets


class Transient(Exception):
    """The channel could not take the message now; try again later (not before retry_after seconds).
    `whole_channel`: the fault is the channel's (no answer, 5xx, 429, wrong settings), not this
    message's (one recipient's mailbox deferred), so the other messages wait too (breaker.py).
    `unclear`: the call may have reached the receiver (no answer after the request was sent), so
    the next try first finds out whether it did (Notify is asked by the message's reference)."""

    def __init__(self, reason: str, retry_after: float | None = None, *, whole_channel: bool = True,
                 unclear: bool = False):
        reason = without_secrets(reason)
        super().__init__(reason)
        self.reason, self.retry_after, self.whole_channel, self.unclear = reason, retry_after, whole_channel, unclear


class Refused(Exception):
    """The receiver refused this message for good: retrying would get the same answer."""

    def __init__(self, reason: str):
        reason = without_secrets(reason)
        super().__init__(reason)
        self.reason = reason


def email_route(config: Config) -> str:
    """Notify when its key is set, else SMTP when a host is set, else the local mailbox."""
    if config.notify_api_key:
        return "notify"
    return "smtp" if config.smtp_host else "mailbox"


def route_of(config: Config, message: OutboxMessage) -> str:
    return route_for(config, message.channel, message.recipient)


def route_for(config: Config, channel: str, recipient: str) -> str:
    """What a message goes through, e.g. `email:smtp:mail.example:25` or `index:index.example`:
    messages on one route share its failures (never a URL's credentials: routes are logged)."""
    if channel == "index":
        return f"index:{host_of(recipient)}"
    route = email_route(config)
    if route == "notify":
        return f"email:notify:{host_of(config.notify_base_url)}"
    if route == "smtp":
        return f"email:smtp:{config.smtp_host}:{config.smtp_port}"
    return f"{channel}:{route}"


def is_local(config: Config, message: OutboxMessage) -> bool:
    """Email kept in the local mailbox: a row written in the deliverer's transaction, no network."""
    return message.channel == "email" and email_route(config) == "mailbox"


def send(config: Config, message: OutboxMessage, *, recovering: bool = False) -> str | None:
    """Hand the message to its channel; raises Transient or Refused when it is not accepted.
    Returns "found" when the receiver had it already (Notify, asked while recovering).

    `recovering`: an earlier call's outcome is unknown (its deliverer died, or the answer never
    came). Notify is asked first and not sent to again if it has the message; the index and SMTP
    get the message again with the same Idempotency-Key or Message-ID, which receivers drop."""
    if message.channel == "index":
        from . import index

        return index.send(config, message)
    if message.channel != "email":
        raise Refused(f"no channel called {message.channel!r}")
    route = email_route(config)
    if route == "notify":
        from . import notify

        if recovering and notify.accepted_before(config, message):
            return "found"
        return notify.send(config, message)
    if route == "smtp":
        from . import smtp

        return smtp.send(config, message)
    raise Transient("the local mailbox is written by the deliverer itself")  # is_local: never sent from here


def request_id_of(message: OutboxMessage) -> str | None:
    """The id of the request that wrote the message, when the row has one: sent as X-Request-Id."""
    return acceptable(getattr(message, "request_id", None))


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP Retry-After header (seconds or a date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now()).total_seconds())


# Answers about this one message: sending it again would get the same answer.
MESSAGE_REFUSALS = (400, 413, 422)
# Answers about the channel's settings (a key revoked or unknown, a clock out, a wrong address).
SETTINGS_REFUSALS = (401, 403, 404)


def refused_or_transient(status: int, reason: str, retry_after: str | None = None,
                         settings_hint: str = "") -> Exception:
    """The outcome of an HTTP answer that is not a success. Only 400, 413 and 422 fail the message;
    any other answer is the channel's: retried, with every message of the channel waiting, and the
    reason (with `settings_hint` for 401, 403, 404: no colon in it) kept for the administrator."""
    if status in MESSAGE_REFUSALS:
        return Refused(reason)
    if status in SETTINGS_REFUSALS and settings_hint:
        reason = with_hint(reason, settings_hint)
    return Transient(reason, retry_after_seconds(retry_after))


def with_hint(reason: str, hint: str) -> str:
    """`hint` right after eCAF's own words (before the receiver's, after the first ": "): pages
    show only those words, and the administrator reading them must learn what to fix."""
    head, colon, tail = reason.partition(": ")
    return f"{head} ({hint}){colon}{tail}"


def configuration_problems(config: Config) -> list[str]:
    """What in the channel settings would stop every message from going out (checked at start)."""
    from . import notify

    problems = notify.configuration_problems(config)
    if config.channel_connect_timeout_seconds <= 0 or config.channel_read_timeout_seconds <= 0:
        problems.append("ECAF_CHANNEL_CONNECT_TIMEOUT and ECAF_CHANNEL_READ_TIMEOUT must be more than 0 seconds")
    if config.outbox_max_backoff_seconds < 1:
        problems.append("ECAF_OUTBOX_MAX_BACKOFF must be at least 1 second")
    return problems
