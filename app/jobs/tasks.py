"""The rq jobs. Arguments are ids only: Redis never holds a name or a word of a CAF.

Each job runs under its own request id. A failed delivery is not an rq failure: the message's
row keeps the failure and its next try, which the sweep makes, so Redis never holds error text
(an address in an SMTP refusal, say) and nothing depends on rq's retries or its scheduler."""
from __future__ import annotations

import logging

from app import request_ids

from .delivery import DeliveryDeferred, DeliveryFailed, deliver
from .runtime import get_runtime
from .sweep import sweep

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


def wake_episode(episode_id: int) -> bool:
    """Jobs queued by earlier releases may still be in Redis: waking is harmless (it re-checks)."""
    with request_ids.bound(request_ids.new_id("job-")):
        return get_runtime().engine.wake(episode_id) is not None


def sweep_all() -> dict:
    with request_ids.bound(request_ids.new_id("job-")):
        report = sweep(get_runtime())
    return report.__dict__
