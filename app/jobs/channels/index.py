"""Index notices: a JSON POST to the national index endpoint named in the message, with connect and
read timeouts, its Idempotency-Key and X-Request-Id.

The endpoint must drop a repeat of an Idempotency-Key it has already taken (answering 2xx or 409):
after a deliverer dies mid-call, or its outcome could not be recorded, the notice is sent again
with the same key. A 409 is therefore counted as delivered."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests

from app.config import Config
from app.models import OutboxMessage

from . import Refused, Transient, refused_or_transient, request_id_of
from .redact import safe_url

SETTINGS_HINT = "check INDEX_ENDPOINT_URL and the credentials in it; every notice waits until then"


def send(config: Config, message: OutboxMessage) -> None:
    url = message.recipient
    if urlsplit(url).scheme not in ("http", "https"):
        raise Refused(f"the index endpoint address is not an http(s) URL: {safe_url(url)!r}")
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
        # The text names the path and query asked for: Transient takes the query out.
        raise Transient(f"the index endpoint could not be reached: {type(exc).__name__}: {exc}") from None
    with response:
        if 200 <= response.status_code < 300 or response.status_code == 409:
            return  # 409: this Idempotency-Key was taken before, by an earlier try whose answer was lost
        reason = f"the index endpoint answered {response.status_code} {response.reason}".rstrip()
        if 300 <= response.status_code < 400:
            reason += (f", redirecting to {safe_url(response.headers.get('Location') or '')!r} (set "
                       "INDEX_ENDPOINT_URL to that address; every notice waits until then)")
        raise refused_or_transient(response.status_code, reason, response.headers.get("Retry-After"), SETTINGS_HINT)
