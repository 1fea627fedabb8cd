"""Email through GOV.UK Notify (notifications-python-client).

Every email uses one Notify template whose subject is `((subject))` and whose body is `((body))`:
eCAF writes the words, Notify sends them. NOTIFY_TEMPLATES may name another template for a kind
of message (with the same two fields). `reference` is the message's idempotency key: when an
earlier call's outcome is unknown (no answer within the read timeout, or the deliverer died before
recording it), Notify is asked for that reference first, and the message is not sent again if
Notify has it.

Notify answers 403 for a key that is revoked or unknown and for a request whose token's time is
more than 30 seconds from Notify's clock, and 400 for a template that is missing or lacks
((subject)) or ((body)): all of them are faults of the settings, not of one message, so every
message waits (retried, never given up) until they are fixed.
"""
from __future__ import annotations

import uuid

import requests
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient
from urllib3.exceptions import ProtocolError

from app.config import Config
from app.models import OutboxMessage

from . import Transient, refused_or_transient, request_id_of, with_hint

SETTINGS_HINT = ("check NOTIFY_API_KEY, whether the key was revoked, and this server's clock (Notify allows 30 "
                 "seconds); every email waits until then")
TEMPLATE_HINT = ("check NOTIFY_EMAIL_TEMPLATE_ID and NOTIFY_TEMPLATES, templates with ((subject)) and ((body)); every "
                 "email waits until then")
# Words of a 400 that speak of the template, not of the recipient: the settings are wrong.
_TEMPLATE_WORDS = ("template", "personalisation")

KEY_SHAPE = "{key name}-{service id}-{secret}, the last two being UUIDs, as Notify shows it when the key is made"


def key_problem(api_key: str) -> str | None:
    """Why NOTIFY_API_KEY cannot be a Notify key (the client reads the ids from fixed places), or None."""
    key = api_key.strip()
    if key != api_key:
        return "NOTIFY_API_KEY has spaces or a line break around it"
    if len(key) < 75 or key[-37] != "-" or key[-74] != "-":
        return f"NOTIFY_API_KEY is not shaped like a Notify API key ({KEY_SHAPE})"
    for part in (key[-73:-37], key[-36:]):
        try:
            uuid.UUID(part)
        except ValueError:
            return f"NOTIFY_API_KEY is not shaped like a Notify API key ({KEY_SHAPE})"
    return None


def _is_template_id(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def configuration_problems(config: Config) -> list[str]:
    problems = []
    if config.notify_api_key:
        problem = key_problem(config.notify_api_key)
        if problem:
            problems.append(problem)
        if not config.notify_email_template_id:
            problems.append("NOTIFY_API_KEY is set but NOTIFY_EMAIL_TEMPLATE_ID is not: name the id of the Notify "
                            "template whose subject is ((subject)) and body ((body))")
    if config.notify_email_template_id and not _is_template_id(config.notify_email_template_id):
        problems.append("NOTIFY_EMAIL_TEMPLATE_ID is not a template id (a UUID, as Notify shows it)")
    wrong = sorted(kind for kind, template in (config.notify_templates or {}).items() if not _is_template_id(template))
    if wrong:
        problems.append(f"NOTIFY_TEMPLATES has values that are not template ids (UUIDs) for: {', '.join(wrong)}")
    if not config.notify_base_url.startswith(("https://", "http://")):
        problems.append("NOTIFY_BASE_URL is not an http(s) URL")
    return problems


def template_for(config: Config, kind: str) -> str:
    template = (config.notify_templates or {}).get(kind) or config.notify_email_template_id
    if not template:
        raise Transient("email cannot go through GOV.UK Notify: NOTIFY_API_KEY is set but NOTIFY_EMAIL_TEMPLATE_ID "
                        "is not (the id of the template whose subject is ((subject)) and body ((body)))")
    return template


def _client(config: Config, message: OutboxMessage) -> NotificationsAPIClient:
    timeouts = (config.channel_connect_timeout_seconds, config.channel_read_timeout_seconds)
    client = NotificationsAPIClient(config.notify_api_key, base_url=config.notify_base_url, timeout=timeouts)
    request_id = request_id_of(message)
    if request_id:
        client.request_session.headers["X-Request-Id"] = request_id
    return client


def _usable_key(config: Config) -> None:
    problem = key_problem(config.notify_api_key)
    if problem:
        raise Transient(f"email cannot go through GOV.UK Notify: {problem}")


def send(config: Config, message: OutboxMessage) -> None:
    _usable_key(config)
    template = template_for(config, message.kind)
    client = _client(config, message)
    try:
        client.send_email_notification(
            email_address=message.recipient, template_id=template, reference=message.idempotency_key,
            personalisation={"subject": message.subject, "body": message.body})
    except APIError as exc:
        _raise_outcome(exc, client.timeout)
    finally:
        client.request_session.close()


def accepted_before(config: Config, message: OutboxMessage) -> bool:
    """Whether Notify already has an email with the message's reference: an earlier call reached it."""
    _usable_key(config)
    client = _client(config, message)
    try:
        found = client.get_all_notifications(template_type="email", reference=message.idempotency_key)
    except APIError as exc:
        try:
            _raise_outcome(exc, client.timeout)
        except Exception as outcome:  # noqa: BLE001 - whatever the answer, it is still unknown
            reason = getattr(outcome, "reason", str(outcome))
            raise Transient(f"GOV.UK Notify could not say whether it has the message already: {reason}",
                            getattr(outcome, "retry_after", None), unclear=True) from None
        raise Transient("GOV.UK Notify could not say whether it has the message already: its answer could not be "
                        "read", unclear=True) from None
    finally:
        client.request_session.close()
    notifications = (found or {}).get("notifications") if isinstance(found, dict) else None
    return any(isinstance(n, dict) and n.get("reference") == message.idempotency_key for n in notifications or ())


def _raise_outcome(exc: APIError, timeouts: tuple[float, float]) -> None:
    response = exc.response
    if response is None:  # no answer at all: the client reports these as 503
        cause = exc.__cause__
        if isinstance(cause, requests.ConnectTimeout):
            raise Transient(f"GOV.UK Notify could not be reached within {timeouts[0]} seconds") from None
        if isinstance(cause, requests.ReadTimeout):
            raise Transient(f"GOV.UK Notify did not answer within {timeouts[1]} seconds", unclear=True) from None
        raise Transient(f"GOV.UK Notify could not be reached: {type(cause).__name__}: {cause}",
                        unclear=_dropped_after_sending(cause)) from None
    if 200 <= response.status_code < 300:
        return  # accepted, though the answer was not the JSON expected: it is sent
    errors = _errors(exc)
    reason = f"GOV.UK Notify answered {response.status_code}: {errors}"
    if response.status_code == 400 and any(word in errors.lower() for word in _TEMPLATE_WORDS):
        raise Transient(with_hint(reason, TEMPLATE_HINT)) from None
    raise refused_or_transient(response.status_code, reason, response.headers.get("Retry-After"),
                               SETTINGS_HINT) from None


def _dropped_after_sending(cause: BaseException | None) -> bool:
    """The connection was lost once the request was on its way (not refused, not unreachable)."""
    inner = cause.args[0] if cause is not None and cause.args else None
    inner = getattr(inner, "reason", inner)  # urllib3's MaxRetryError wraps what happened
    return isinstance(inner, ProtocolError)


def _errors(exc: APIError) -> str:
    """Notify's errors as `Name: message`, e.g. `BadRequestError: Can't send to this recipient ...`."""
    try:
        found = exc.response.json().get("errors")
    except (ValueError, AttributeError):
        found = None
    if isinstance(found, list) and found:
        return "; ".join(f"{e.get('error', 'Error')}: {e.get('message', '')}" for e in found if isinstance(e, dict))
    text = (exc.response.text or "").strip()
    return text[:300] or (exc.response.reason or "no reason given")
