"""How often a client system may call the JSON API (ECAF_API_RATE_LIMIT), and how often an address may
send credentials that fail (ECAF_API_FAILED_CREDENTIALS_LIMIT), counted in a moving window.

The counts live in Redis when REDIS_URL is set, so every web process shares them; in this process's
memory otherwise (a local run on SQLite). When Redis cannot be reached the limits are counted in this
process's memory until Redis is tried again (a log line says so): a national system's clients keep
working through a Redis outage, and each process still holds a flood back.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable, TypeVar

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
EXTENSION = "ecaf_api_rate_limits"
# While Redis is away, this long on this process's memory before Redis is tried again: a dead Redis
# costs one timeout per this many seconds, not one per call.
REDIS_RETRY_SECONDS = 30
# A command to Redis never holds an API call longer than this.
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
# Refusals are recorded (audit trail, log) at most once a minute per client or address, not once per call.
ONCE_A_MINUTE = parse("1/minute")
T = TypeVar("T")


def parse_limit(setting: str, text: str) -> RateLimitItem:
    """A limit such as "120/minute" or "120 per minute"; anything else stops the start, naming the setting."""
    try:
        limit = parse(text)
    except ValueError:
        limit = None
    if limit is None or limit.amount < 1:
        raise ValueError(f"{setting} is not a rate limit like '120/minute': {text!r}")
    return limit


def described(limit: RateLimitItem) -> str:
    """"120 calls a minute", "600 calls in 10 minutes"."""
    unit = limit.GRANULARITY.name
    span = f"{'an' if unit == 'hour' else 'a'} {unit}" if limit.multiples == 1 else f"in {limit.multiples} {unit}s"
    return f"{limit.amount} calls {span}"


class RateLimits:
    def __init__(self, per_client: RateLimitItem, failed_per_address: RateLimitItem, redis_url: str | None):
        self.per_client, self.failed_per_address = per_client, failed_per_address
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._shared = (MovingWindowRateLimiter(RedisStorage(redis_url, wrap_exceptions=True, **REDIS_TIMEOUTS))
                        if redis_url else None)
        self._redis_failed_at: float | None = None
        self._lock = threading.Lock()

    def client_wait(self, client_id: str) -> int | None:
        """Spends one call of the client's budget: None if it may call, else the seconds until it may."""
        return self._counted(lambda limiter: None if limiter.hit(self.per_client, "client", client_id)
                             else _wait(limiter, self.per_client, "client", client_id))

    def address_wait(self, address: str) -> int | None:
        """None while the address has failed credentials fewer times than allowed, else seconds to wait."""
        return self._counted(lambda limiter: None if limiter.test(self.failed_per_address, "failed", address)
                             else _wait(limiter, self.failed_per_address, "failed", address))

    def credentials_failed(self, address: str) -> None:
        self._counted(lambda limiter: limiter.hit(self.failed_per_address, "failed", address))

    def first_refusal_this_minute(self, kind: str, key: str) -> bool:
        """True for the first refusal of `key` in a minute: only that one is recorded."""
        return self._counted(lambda limiter: limiter.hit(ONCE_A_MINUTE, "refused", kind, key))

    def _counted(self, count: Callable[[MovingWindowRateLimiter], T]) -> T:
        shared = self._shared
        if shared is not None and self._redis_usable():
            try:
                return count(shared)
            except StorageError as exc:
                self._redis_lost(exc)
        return count(self._memory)

    def _redis_usable(self) -> bool:
        with self._lock:
            if self._redis_failed_at is None:
                return True
            if time.monotonic() - self._redis_failed_at < REDIS_RETRY_SECONDS:
                return False
            self._redis_failed_at = None
            log.info("api rate limits: trying Redis again")
            return True

    def _redis_lost(self, exc: StorageError) -> None:
        with self._lock:
            self._redis_failed_at = time.monotonic()
        log.warning("api rate limits: Redis cannot be reached (%s); counting in this process's memory for %d s",
                    type(getattr(exc, "storage_error", exc)).__name__, REDIS_RETRY_SECONDS)


def _wait(limiter: MovingWindowRateLimiter, item: RateLimitItem, *keys: str) -> int:
    """Whole seconds until the oldest call in the window leaves it (at least 1)."""
    reset_at = limiter.get_window_stats(item, *keys).reset_time
    # Redis keeps the times to fewer digits: rounding to the millisecond keeps a full window at its length.
    return max(1, math.ceil(round(reset_at - time.time(), 3)))


def install(app: Flask) -> None:
    config = app.extensions["ecaf"].config
    app.extensions[EXTENSION] = RateLimits(
        parse_limit("ECAF_API_RATE_LIMIT", config.api_rate_limit),
        parse_limit("ECAF_API_FAILED_CREDENTIALS_LIMIT", config.api_failed_credentials_limit),
        config.redis_url)


def of_app() -> RateLimits:
    return current_app.extensions[EXTENSION]
