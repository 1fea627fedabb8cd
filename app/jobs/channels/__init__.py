"""Where an outbox message goes: email through GOV.UK Notify, an SMTP server or the local mailbox;
index notices to the national index endpoint.

A channel either returns (the message was accepted) or raises one of two outcomes, so the
deliverer can tell a fault that passes from a refusal that would repeat on every try:
- Transient: timeouts, refused connections, 5xx, 429, SMTP 4xx, settings being fixed. Retried.
- Refused: the receiver said no to this message for good (a bad address, a key it does not know,
  4xx). The message is marked failed with the reason; an administrator can send it again.
"""
from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from app.clock import now
from app.config import Config
from app.models import OutboxMessage
from app.request_ids import acceptable


class Transient(Exception):
    """The channel could not take the message now; try again later (not before retry_after seconds).
    `whole_channel`: the fault is the channel's (no answer, 5xx, 429), not this message's (one
    recipient's mailbox deferred), so the other messages wait too (breaker.py)."""

    def __init__(self, reason: str, retry_after: float | None = None, *, whole_channel: bool = True):
        super().__init__(reason)
        self.reason, self.retry_after, self.whole_channel = reason, retry_after, whole_channel


class Refused(Exception):
    """The receiver refused this message for good: retrying would get the same answer."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def email_route(config: Config) -> str:
    """Notify when its key is set, else SMTP when a host is set, else the local mailbox."""
    if config.notify_api_key:
        return "notify"
    return "smtp" if config.smtp_host else "mailbox"


def route_of(config: Config, message: OutboxMessage) -> str:
    """What a message goes through, e.g. `email:smtp:mail.example:25` or `index:index.example`:
    messages on one route share its failures."""
    if message.channel == "index":
        return f"index:{urlsplit(message.recipient).netloc}"
    route = email_route(config)
    if route == "notify":
        return f"email:notify:{config.notify_base_url}"
    if route == "smtp":
        return f"email:smtp:{config.smtp_host}:{config.smtp_port}"
    return f"{message.channel}:{route}"


def send(config: Config, message: OutboxMessage, session) -> None:
    """Hand the message to its channel; raises Transient or Refused when it is not accepted."""
    if message.channel == "index":
        from . import index

        return index.send(config, message)
    if message.channel != "email":
        raise Refused(f"no channel called {message.channel!r}")
    route = email_route(config)
    if route == "notify":
        from . import notify

        return notify.send(config, message)
    if route == "smtp":
        from . import smtp

        return smtp.send(config, message)
    from . import mailbox

    return mailbox.send(config, message, session)


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


def refused_or_transient(status: int, reason: str, retry_after: str | None = None) -> Exception:
    """The outcome of an HTTP answer that is not a success: 408, 429 and 5xx pass; other 4xx do not."""
    if status in (408, 429) or status >= 500:
        return Transient(reason, retry_after_seconds(retry_after))
    return Refused(reason)


def configuration_problems(config: Config) -> list[str]:
    """What in the channel settings would stop every message from going out (checked at start)."""
    from . import notify

    problems = notify.configuration_problems(config)
    if config.channel_connect_timeout_seconds <= 0 or config.channel_read_timeout_seconds <= 0:
        problems.append("ECAF_CHANNEL_CONNECT_TIMEOUT and ECAF_CHANNEL_READ_TIMEOUT must be more than 0 seconds")
    if config.outbox_max_backoff_seconds < 1:
        problems.append("ECAF_OUTBOX_MAX_BACKOFF must be at least 1 second")
    return problems
