"""What operators measure, with prometheus_client.

Every process records into these; `/metrics` exposes them. Under `ecaf serve` (and for workers on
the same host) PROMETHEUS_MULTIPROC_DIR must be set before this module is first imported, so that
every process writes its figures where one scrape can add them up (prometheus_client's
multiprocess mode). Labels are kinds, channels, endpoints and statuses only: never a name, an id
or a word of a CAF.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds from a few milliseconds to a minute: pages, steps, deliveries.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Timer lateness runs from on time to long outages.
_LATENESS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

REQUEST_SECONDS = Histogram("ecaf_http_request_seconds", "Time to answer a request, by endpoint and status",
                            ("endpoint", "method", "status"), buckets=_LATENCY)
STEP_SECONDS = Histogram("ecaf_step_seconds", "Time of a workflow step, by kind and outcome",
                         ("kind", "outcome"), buckets=_LATENCY)
STEP_FAILURES = Counter("ecaf_step_failures_total", "Workflow steps that failed, by kind and reason",
                        ("kind", "reason"))
STEP_RETRIES = Counter("ecaf_step_retries_total", "Steps rolled back and run again after a transient database "
                       "error, by kind", ("kind",))
TIMER_LATENESS = Histogram("ecaf_timer_lateness_seconds", "How long after its due time a timer fired",
                           buckets=_LATENESS)
# No per-episode label: the episode's own error says which one (app/jobs/failing_deadlines.py).
TIMER_WAKE_FAILURES = Counter("ecaf_timer_wake_failures_total", "Deadlines that could not be fired for a reason "
                              "that is neither the handler's fault nor a passing database error")
DELIVERIES = Counter("ecaf_outbox_deliveries_total", "Delivery attempts of outbox messages, by channel and result",
                     ("channel", "result"))
SWEEP_SECONDS = Histogram("ecaf_sweep_seconds", "Time of one safety-net sweep", buckets=_LATENCY)
# "max" over every process: the newest sweep anywhere on the host. Alert when it falls behind the interval.
SWEEP_LAST_FINISHED = Gauge("ecaf_sweep_last_finished_timestamp_seconds", "When the last safety-net sweep ended "
                            "(Unix time)", multiprocess_mode="max")
SIGN_IN_FAILURES = Counter("ecaf_sign_in_failures_total", "Failed sign-in attempts, by what failed",
                           ("kind",))
SIGN_IN_THROTTLED = Counter("ecaf_sign_in_throttled_total", "Sign-in attempts made to wait, by what was counted",
                            ("counter",))
# Figures read from the database and Redis (outbox pending, oldest pending, failures; queue depth;
# workers; overdue timers) are collected when scraped, by the scraping process: app/web/metrics.py.


# Methods a client may send are any token: anything else is counted as "other", so a label cannot grow.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_observed(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    """A request was answered. `endpoint` is the matched route's name (None when none matched), never the path."""
    REQUEST_SECONDS.labels(endpoint or "none", method if method in _METHODS else "other",
                           str(status)).observe(max(0.0, seconds))


def step_observed(kind: str, seconds: float, outcome: str) -> None:
    """A step ended: outcome is ok, error (the handler failed: episode error), refused or transient."""
    STEP_SECONDS.labels(kind, outcome).observe(seconds)
    if outcome not in ("ok", "refused"):
        STEP_FAILURES.labels(kind, outcome).inc()


def step_retried(kind: str) -> None:
    STEP_RETRIES.labels(kind).inc()


def timer_fired(lateness_seconds: float) -> None:
    TIMER_LATENESS.observe(max(0.0, lateness_seconds))


def timer_wake_failed() -> None:
    TIMER_WAKE_FAILURES.inc()


def delivery_attempted(channel: str, result: str) -> None:
    """result: sent, retry (will be tried again) or failed (given up)."""
    DELIVERIES.labels(channel, result).inc()


def sweep_took(seconds: float) -> None:
    SWEEP_SECONDS.observe(seconds)
    SWEEP_LAST_FINISHED.set_to_current_time()


def sign_in_failed(kind: str) -> None:
    """kind: password, code, recovery_code, passkey (wrong, or refused by the account's state)."""
    SIGN_IN_FAILURES.labels(kind).inc()


def sign_in_throttled(counter: str) -> None:
    """counter: name or address (wrong passwords), account (wrong second factors) or lock (a locked account)."""
    SIGN_IN_THROTTLED.labels(counter).inc()
