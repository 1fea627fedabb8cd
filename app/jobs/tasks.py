"""The rq job: delivering a message a step queued. Its argument is an id only: Redis never holds
a name or a word of a CAF.

Each job runs under its own request id. (Deadlines and the sweep are no rq jobs: the worker's own
loops run them, app/jobs/worker.py.) A failed delivery is not an rq failure: the message's
row keeps the failure and its next try, which the sweep makes, so Redis never holds error text
(an address in an SMTP refusal, say) and nothing depends on rq's retries or its scheduler."""
from __future__ import annotations

import logging

from app import request_ids

from .delivery import DeliveryDeferred, DeliveryFailed, deliver
from .runtime import get_runtime

log = logging.getLogger(__name__)


def deliver_message(message_id: int) -> str:
    runtime = get_runtime()
    with request_ids.bound(request_ids.new_id("job-")):
        try:
            return deliver(runtime.db, runtime.config, message_id)
        except DeliveryFailed as exc:
            (log.debug if isinstance(exc, DeliveryDeferred) else log.warning)("%s", exc)
            return "pending"
        except Exception:  # noqa: BLE001 - e.g. the database went away: the row is still pending
            log.exception("delivering message %s failed; the sweep tries again", message_id)
            return "pending"
