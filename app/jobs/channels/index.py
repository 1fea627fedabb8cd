"""Index notices: a JSON POST to the national index endpoint named in the message, with connect and
read timeouts, its Idempotency-Key (the receiver drops a repeat) and X-Request-Id."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests

from app.config import Config
from app.models import OutboxMessage

from . import Refused, Transient, refused_or_transient, request_id_of


def send(config: Config, message: OutboxMessage) -> None:
    url = message.recipient
    if urlsplit(url).scheme not in ("http", "https"):
        raise Refused(f"the index endpoint address is not an http(s) URL: {url!r}")
    headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key}
    request_id = request_id_of(message)
    if request_id:
        headers["X-Request-Id"] = request_id
    timeouts = (config.channel_connect_timeout_seconds, config.channel_read_timeout_seconds)
    try:
        # No redirects: a POST turned into a GET elsewhere would be reported as delivered.
        response = requests.post(url, data=json.dumps(message.payload or {}), headers=headers, timeout=timeouts,
                                 allow_redirects=False)
    except requests.ConnectTimeout:
        raise Transient(f"the index endpoint could not be reached within {timeouts[0]} seconds") from None
    except requests.ReadTimeout:
        raise Transient(f"the index endpoint did not answer within {timeouts[1]} seconds") from None
    except requests.RequestException as exc:
        raise Transient(f"the index endpoint could not be reached: {type(exc).__name__}: {exc}") from None
    with response:
        if 200 <= response.status_code < 300:
            return
        reason = f"the index endpoint answered {response.status_code} {response.reason}".rstrip()
        if 300 <= response.status_code < 400:
            reason += f", redirecting to {response.headers.get('Location')!r}: set INDEX_ENDPOINT_URL to that address"
        raise refused_or_transient(response.status_code, reason, response.headers.get("Retry-After"))
