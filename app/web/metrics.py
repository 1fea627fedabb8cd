"""/metrics for Prometheus: every process's figures, and what the database and Redis hold now.

Served only to a scraper on this host (loopback) or to one bearing ECAF_METRICS_TOKEN. Behind a
proxy (ECAF_PROXY_HOPS > 0), or when a request came through one anyway, loopback proves nothing, so
only the token opens it. Anyone else gets the same 404 as any unknown page: no audit row, no session.

Under `ecaf serve` PROMETHEUS_MULTIPROC_DIR is set and each scrape adds up the files every web
process and every worker on this host write there; otherwise this process's own figures are served.
The database and Redis figures are read at scrape time, by the scraping process; a read that fails
is counted in `ecaf_scrape_errors` and the rest are still served.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time

from flask import Blueprint, Response, abort, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.clock import now
from app.services import system_status
from app.web import runtime
from app.web.access import public

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)
# Headers a proxy adds: their presence means the loopback address is the proxy's, not the scraper's.
_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-Ip")


def _bearer_token_matches(expected: str | None) -> bool:
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


def _from_loopback() -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def may_scrape() -> bool:
    config = runtime().config
    if _bearer_token_matches(config.metrics_token):
        return True
    if config.proxy_hops > 0 or any(name in request.headers for name in _PROXY_HEADERS):
        return False
    return _from_loopback()


class _ThisProcess:
    """The default registry's figures (this process only), as one collector of the scrape's registry."""

    def collect(self):
        yield from REGISTRY.collect()


class SystemFigures:
    """Outbox, queues, workers and late deadlines, read when scraped."""

    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        errors = {"database": 0, "redis": 0}
        yield from self._database(errors)
        yield from self._redis(errors)
        failures = GaugeMetricFamily("ecaf_scrape_errors", "Sources this scrape could not read (1: failed)",
                                     labels=["source"])
        for source, failed in errors.items():
            failures.add_metric([source], failed)
        yield failures

    def _database(self, errors):
        config, moment = self.runtime.config, now()
        try:
            with self.runtime.db.session() as session:
                system_status.limit_statement_time(session)
                channels = system_status.channels(session, moment)
                late = system_status.late_timers(session, config.sweep_interval_seconds, moment=moment)
        except Exception:  # noqa: BLE001 - a scrape reports the failure and serves the rest
            log.warning("metrics: the database could not be read", exc_info=True)
            errors["database"] = 1
            return
        pending = GaugeMetricFamily("ecaf_outbox_pending_messages", "Messages waiting to be delivered",
                                    labels=["channel"])
        oldest = GaugeMetricFamily("ecaf_outbox_oldest_pending_seconds", "Age of the oldest message waiting",
                                   labels=["channel"])
        failed = GaugeMetricFamily("ecaf_outbox_failed_messages", "Messages given up and not sent again",
                                   labels=["channel"])
        for channel in channels:
            pending.add_metric([channel.channel], channel.pending)
            oldest.add_metric([channel.channel], channel.oldest_pending_seconds or 0)
            failed.add_metric([channel.channel], channel.failed)
        overdue = GaugeMetricFamily("ecaf_timers_overdue_episodes", "Episodes whose deadline passed more than one "
                                    "sweep interval ago without firing")
        overdue.add_metric([], late.count)
        yield from (pending, oldest, failed, overdue)

    def _redis(self, errors):
        url = self.runtime.config.redis_url
        if not url:
            return  # jobs run in the web process: no queues or workers to count
        try:
            seen = system_status.workers(url, time.time())
        except Exception:  # noqa: BLE001 - a scrape reports the failure and serves the rest
            log.warning("metrics: Redis could not be read", exc_info=True)
            errors["redis"] = 1
            return
        live = GaugeMetricFamily("ecaf_live_workers", "Workers whose heartbeat is under a minute old")
        live.add_metric([], len(seen.live))
        depth = GaugeMetricFamily("ecaf_rq_queue_depth", "Jobs waiting in each queue", labels=["queue"])
        for name, count in sorted(seen.queues.items()):
            depth.add_metric([name], count)
        yield from (live, depth)


def scrape_registry(runtime) -> CollectorRegistry:
    """A registry for one scrape: every process's files in multiprocess mode, else this process's figures."""
    registry = CollectorRegistry()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    registry.register(SystemFigures(runtime))
    return registry


@bp.get("/metrics")
@public
def scrape():
    if not may_scrape():
        abort(404)
    return Response(generate_latest(scrape_registry(runtime())), content_type=CONTENT_TYPE_LATEST)
