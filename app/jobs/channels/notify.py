"""Email through GOV.UK Notify (notifications-python-client).

Every email uses one Notify template whose subject is `((subject))` and whose body is `((body))`:
eCAF writes the words, Notify sends them. NOTIFY_TEMPLATES may name another template for a kind
of message (with the same two fields). `reference` is the message's idempotency key, so a repeat
after a crash between sending and recording can be recognised in Notify's records.
"""
from __future__ import annotations

import uuid

import requests
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from app.config import Config
from app.models import OutboxMessage

from . import Transient, refused_or_transient, request_id_of

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


def send(config: Config, message: OutboxMessage) -> None:
    problem = key_problem(config.notify_api_key)
    if problem:
        raise Transient(f"email cannot go through GOV.UK Notify: {problem}")
    template = template_for(config, message.kind)
    timeouts = (config.channel_connect_timeout_seconds, config.channel_read_timeout_seconds)
    client = NotificationsAPIClient(config.notify_api_key, base_url=config.notify_base_url, timeout=timeouts)
    request_id = request_id_of(message)
    if request_id:
        client.request_session.headers["X-Request-Id"] = request_id
    try:
        client.send_email_notification(
            email_address=message.recipient, template_id=template, reference=message.idempotency_key,
            personalisation={"subject": message.subject, "body": message.body})
    except APIError as exc:
        _raise_outcome(exc, timeouts)
    finally:
        client.request_session.close()


def _raise_outcome(exc: APIError, timeouts: tuple[float, float]) -> None:
    response = exc.response
    if response is None:  # no answer at all: the client reports these as 503
        cause = exc.__cause__
        if isinstance(cause, requests.ConnectTimeout):
            raise Transient(f"GOV.UK Notify could not be reached within {timeouts[0]} seconds") from None
        if isinstance(cause, requests.ReadTimeout):
            raise Transient(f"GOV.UK Notify did not answer within {timeouts[1]} seconds") from None
        raise Transient(f"GOV.UK Notify could not be reached: {type(cause).__name__}: {cause}") from None
    if 200 <= response.status_code < 300:
        return  # accepted, though the answer was not the JSON expected: it is sent
    reason = f"GOV.UK Notify answered {response.status_code}: {_errors(exc)}"
    raise refused_or_transient(response.status_code, reason, response.headers.get("Retry-After")) from None


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
