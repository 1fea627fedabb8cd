"""The rq jobs. Arguments are ids only: Redis never holds a name or a word of a CAF."""
from __future__ import annotations

from .delivery import deliver
from .runtime import get_runtime
from .sweep import sweep


def wake_episode(episode_id: int) -> bool:
    return get_runtime().engine.wake(episode_id) is not None


def deliver_message(message_id: int) -> str:
    runtime = get_runtime()
    return deliver(runtime.db, runtime.config, message_id)  # raises DeliveryFailed: rq retries


def sweep_all() -> dict:
    report = sweep(get_runtime())
    return report.__dict__
