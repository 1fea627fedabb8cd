"""`ecaf worker`: deadlines from the database, deliveries from Redis, never giving up (app/jobs/worker.py)."""
from __future__ import annotations

import sys

import click

from app.config import Config


@click.command(help="Run a background worker (needs REDIS_URL): fires every deadline as it comes due "
                    "(read from the database every ECAF_TIMER_POLL seconds), delivers the messages steps "
                    "queue in Redis, retries undelivered ones and sweeps every ECAF_SWEEP_INTERVAL seconds. "
                    "It survives Redis and database outages; SIGTERM stops it once the work in progress is "
                    "done.")
@click.option("--burst", is_flag=True, help="Do what is due now (timers, queued and due messages, the sweep), "
                                            "then stop.")
def worker(burst: bool) -> None:
    from app import heap
    from app.cli import _keys_ready
    from app.jobs.runtime import set_runtime
    from app.jobs.worker import WorkerProcess

    config = Config.from_env()
    if not config.redis_url:
        click.echo("REDIS_URL is not set: without Redis the web app runs the jobs itself (ecaf run)", err=True)
        sys.exit(2)
    _keys_ready(config)  # and the channels' settings
    runtime = _runtime_or_exit(config)
    process = WorkerProcess(runtime)  # also the engine's dispatcher here
    set_runtime(runtime)  # rq's jobs run in this process: they use this runtime
    heap.settle()
    sys.exit(process.run(burst=burst))


def _runtime_or_exit(config: Config):
    """The worker's runtime, or exit 2 naming the setting that cannot work: a worker that retried a
    malformed URL forever would look alive and do nothing. (No URL is echoed: it may hold a password.)"""
    from app.jobs.dispatch import redis_client
    from app.jobs.runtime import Runtime

    try:
        redis_client(config.redis_url)  # parses only: Redis may well be down now, and that is survivable
    except ValueError as exc:
        click.echo(f"REDIS_URL is not usable: {exc}", err=True)
        sys.exit(2)
    try:
        return Runtime.build(config)  # makes the engine only: the database is not asked yet
    except Exception as exc:  # noqa: BLE001 - a malformed URL or a driver that is not installed
        click.echo(f"DATABASE_URL is not usable ({type(exc).__name__}): give a postgresql:// or sqlite:/// URL",
                   err=True)
        sys.exit(2)
