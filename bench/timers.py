"""Deadlines benchmark: real `ecaf worker` processes wake due episodes and deliver what they write.

    python bench/timers.py [--wake 10000] [--workers 2] [--due 1000] [--over 90] [--sqlite 0]
                           [--postgres postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/11]

(a) wake: N episodes whose 35-day deadline has passed are made due at one instant (6 s ahead);
    W `ecaf worker` processes (production settings) wake them. Prints the time and rate until every one has fired,
    that each fired exactly once, and how long until the outbox was empty;
(b) continuous: M deadlines falling due evenly over S seconds while the workers run. Prints their
    lateness (when the step wrote the overdue alert, after the due time) p50/p95/p99/max, and
    when the outbox was empty after the last one;
(c) with --sqlite N: (a) with one worker on a SQLite file (SQLite runs one writer at a time).
Email goes by SMTP to a sink in this process (bench/smtp_sink.py), which checks that no Message-ID
arrives twice.

Each run makes its own PostgreSQL database on the server named by --postgres and drops it
afterwards (bench/scratch.py). Smoke run: --wake 20 --due 10 --over 3.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, insert, select, text, update  # noqa: E402

from app.clock import now  # noqa: E402
from app.jobs.runtime import Runtime  # noqa: E402
from app.models import AuditEvent, Child, Episode, HumanTask, OutboxMessage  # noqa: E402
from bench.scratch import SERVER, scratch_database  # noqa: E402
from bench.small_world import small_world  # noqa: E402
from bench.smtp_sink import SmtpSink  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = date.today()
CHECKLIST = {"decision": "full_caf"}
CONSENT = {"decision": "given", "subject": "child", "given_by_name": "Parent", "relationship": "Mother",
           "has_parental_responsibility": True, "consent_to_storage": True, "consent_to_sharing": True,
           "method": "written", "given_on": TODAY.isoformat()}
KEYS = {"SECRET_KEY": secrets.token_hex(32), "ECAF_TOTP_KEY": Fernet.generate_key().decode(),
        "ECAF_AUDIT_KEY": secrets.token_hex(32)}
UNSENT = ("pending", "sending")
GIVE_UP_SECONDS = 900  # a phase that has not finished by then is reported as such


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------ episodes whose deadline we choose
def prepared(url: str) -> tuple[Runtime, int]:
    """A migrated database with the shipped processes, one authority, two users, and a template
    episode waiting at 'Complete the assessment' with its 35-day deadline set."""
    runtime, authority_id = small_world(url, KEYS["ECAF_AUDIT_KEY"])
    with runtime.db.session() as session:
        child = Child(given_names="Bench", family_name="Template", date_of_birth=date(2015, 1, 1),
                      home_authority_id=authority_id, created_at=now())
        session.add(child)
        session.flush()
        child_id = child.id
    engine = runtime.engine
    episode_id = engine.start_episode(child_id=child_id, originator_id=1).episode_id
    for name, data in (("pre_assessment_checklist", CHECKLIST), ("obtain_consent", CONSENT)):
        with runtime.db.session() as session:
            task = session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name,
                                                          HumanTask.status == "ready"))
        result = engine.complete_task(episode_id, task.id, data, 1)
        if result.status != "open":
            raise SystemExit(f"the template episode could not complete {name}: {result.error}")
    return runtime, episode_id


def clone(runtime: Runtime, template_id: int, dues: list, *, scheduled: bool = True) -> list[int]:
    """Copies of the template whose deadline (in the stored workflow and in next_timer_at) is
    dues[i]; with scheduled=False next_timer_at stays empty (nobody looks at them yet)."""
    with runtime.db.session() as session:
        template = session.get(Episode, template_id)
        ready = session.scalars(select(HumanTask).where(HumanTask.episode_id == template_id,
                                                        HumanTask.status == "ready")).all()
        old_due = template.next_timer_at.isoformat()
        episode_columns = {c.key: getattr(template, c.key) for c in Episode.__table__.columns if c.key != "id"}
        task_rows = [{c.key: getattr(t, c.key) for c in HumanTask.__table__.columns if c.key != "id"} for t in ready]
    ids = []
    for start in range(0, len(dues), 500):
        part = dues[start:start + 500]
        with runtime.db.session() as session:
            first_child = (session.scalar(select(func.max(Child.id))) or 0) + 1
            session.execute(insert(Child), [dict(id=first_child + i, given_names="Bench", family_name=f"Clone-{i}",
                                                 date_of_birth=date(2015, 1, 1), home_authority_id=1,
                                                 created_at=now()) for i in range(len(part))])
            made = session.execute(insert(Episode).returning(Episode.id), [
                {**episode_columns, "child_id": first_child + i, "state": episode_columns["state"].replace(
                    old_due, due.isoformat()), "next_timer_at": due if scheduled else None}
                for i, due in enumerate(part)]).scalars().all()
            session.execute(insert(HumanTask), [{**row, "episode_id": episode_id, "due_at": due}
                                                for episode_id, due in zip(made, part) for row in task_rows])
            ids += made
    return ids


# ------------------------------------------------------------------ the workers
def start_workers(count: int, database_url: str, redis_url: str, smtp_port: int) -> list[subprocess.Popen]:
    env = {**os.environ, **KEYS, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port)}
    env.pop("NOTIFY_API_KEY", None)
    ecaf = str(Path(sys.executable).with_name("ecaf"))
    return [subprocess.Popen([ecaf, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=open(Path(tempfile.gettempdir()) / f"bench-timers-worker-{n}.log", "w"))
            for n in range(count)]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=70)
        except subprocess.TimeoutExpired:
            worker.kill()


def wait_until_serving(runtime: Runtime, workers: list[subprocess.Popen], template_id: int) -> None:
    """Until every worker has done a timer pass: one canary episode each, due now, must be woken."""
    canaries = clone(runtime, template_id, [now() - timedelta(seconds=1)] * len(workers))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise SystemExit("a worker stopped: see bench-timers-worker-*.log in the temporary directory")
        if fired(runtime, canaries) == len(canaries) and outbox_left(runtime) == 0:
            return
        time.sleep(0.2)
    raise SystemExit("the workers did not wake the canary episodes within 2 minutes")


# ------------------------------------------------------------------ what happened
def among(column, episode_ids: list[int]):
    """The clones of one call are numbered in a row: a range is a light question to ask every moment."""
    return column.between(min(episode_ids), max(episode_ids))


def fired(runtime: Runtime, episode_ids: list[int]) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count(func.distinct(AuditEvent.episode_id))).where(
            AuditEvent.action == "deadline_missed", among(AuditEvent.episode_id, episode_ids))) or 0


def fired_more_than_once(runtime: Runtime, episode_ids: list[int]) -> int:
    with runtime.db.session() as session:
        counts = session.execute(select(AuditEvent.episode_id, func.count()).where(
            AuditEvent.action == "deadline_missed", among(AuditEvent.episode_id, episode_ids))
            .group_by(AuditEvent.episode_id)).all()
    return sum(1 for _, n in counts if n > 1)


def outbox_left(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.status.in_(UNSENT))) or 0


def wait_for(what, target, started: float) -> float | None:
    """Seconds from `started` until what() == target, None if never within GIVE_UP_SECONDS."""
    while time.monotonic() - started < GIVE_UP_SECONDS:
        if what() == target:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def lateness(runtime: Runtime, episode_ids: list[int], dues: dict[int, object]) -> list[float]:
    with runtime.db.session() as session:
        rows = session.execute(select(OutboxMessage.episode_id, OutboxMessage.created_at).where(
            OutboxMessage.kind == "overdue_alert", among(OutboxMessage.episode_id, episode_ids))).all()
    return [(created - dues[episode_id]).total_seconds() for episode_id, created in rows]


def delivery_delays(runtime: Runtime, episode_ids: list[int]) -> list[float]:
    with runtime.db.session() as session:
        rows = session.execute(select(OutboxMessage.created_at, OutboxMessage.sent_at).where(
            among(OutboxMessage.episode_id, episode_ids), OutboxMessage.sent_at.is_not(None))).all()
    return [(sent - created).total_seconds() for created, sent in rows]


def said(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else f"not within {GIVE_UP_SECONDS} s"


# ------------------------------------------------------------------ the two measurements
def cpu_seconds(pids: list[int]) -> float | None:
    """User and system CPU the processes have used (Linux /proc), None where it cannot be read."""
    try:
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def postgres_pids(runtime: Runtime) -> list[int]:
    """The server processes of the workers' connections (PostgreSQL on this machine)."""
    if not runtime.db.is_postgresql:
        return []
    with runtime.db.session() as session:
        return list(session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND pid <> pg_backend_pid()")))


def cpu_per_wake(before: tuple, after: tuple, count: int) -> str:
    (workers0, server0), (workers1, server1) = before, after
    said = []
    if workers0 is not None and workers1 is not None:
        said.append(f"workers' CPU {(workers1 - workers0) / count * 1000:.1f} ms a wake (its messages included)")
    if server0 is not None and server1 is not None and server1 > server0:
        said.append(f"PostgreSQL's {(server1 - server0) / count * 1000:.1f} ms")
    return "; " + ", ".join(said) if said else ""


def wake_all(runtime: Runtime, template_id: int, count: int, name: str, workers: list[subprocess.Popen]) -> None:
    episode_ids = clone(runtime, template_id, [now() - timedelta(minutes=1)] * count, scheduled=False)
    # All due at one instant a few seconds ahead (as deadlines are known ahead), timed from then.
    due = now() + timedelta(seconds=6)
    with runtime.db.session() as session:
        session.execute(update(Episode).where(among(Episode.id, episode_ids)).values(next_timer_at=due))
    server = postgres_pids(runtime)
    pids = [w.pid for w in workers]
    before = (cpu_seconds(pids), cpu_seconds(server))
    own = time.process_time()
    time.sleep(max(0.0, (due - now()).total_seconds()))
    started = time.monotonic()
    took = wait_for(lambda: fired(runtime, episode_ids), count, started)
    empty = wait_for(lambda: outbox_left(runtime), 0, started)
    cpu = cpu_per_wake(before, (cpu_seconds(pids), cpu_seconds(server)), count)
    cpu += f", this benchmark's (its SMTP sink) {(time.process_time() - own) / count * 1000:.1f} ms"
    twice = fired_more_than_once(runtime, episode_ids)
    delays = delivery_delays(runtime, episode_ids)
    rate = f"{count / took:.0f} episodes/s" if took else "unfinished"
    print(f"(a) {name}, {len(workers)} worker(s): {count} due episodes woken in {said(took)} ({rate}); "
          f"{'each exactly once' if not twice else f'{twice} fired more than once'}; outbox empty after "
          f"{said(empty)}; message delay p50 {pct(delays, 50):.1f} s, p99 {pct(delays, 99):.1f} s{cpu} "
          f"[load {load()}]" if delays else f"(a) {name}: nothing woke in {GIVE_UP_SECONDS} s")


def continuous(runtime: Runtime, template_id: int, count: int, over: float, name: str, workers: int) -> None:
    lead = 6.0 + count / 500  # the inserts go first, and a worker polls at least every 5 s
    first = now() + timedelta(seconds=lead)
    dues = [first + timedelta(seconds=over * i / max(1, count - 1)) for i in range(count)]
    episode_ids = clone(runtime, template_id, dues)
    due_of = dict(zip(episode_ids, dues))
    until_last = (dues[-1] - now()).total_seconds()
    started = time.monotonic()
    took = wait_for(lambda: fired(runtime, episode_ids), count, started)
    empty = wait_for(lambda: outbox_left(runtime), 0, started)
    late = lateness(runtime, episode_ids, due_of)
    twice = fired_more_than_once(runtime, episode_ids)
    delays = delivery_delays(runtime, episode_ids)
    if not late or took is None:
        print(f"(b) {name}: {len(late)} of {count} deadlines fired within {GIVE_UP_SECONDS} s")
        return
    print(f"(b) {name}, {workers} worker(s): {count} deadlines due over {over:.0f} s: lateness p50 "
          f"{pct(late, 50):.2f} s, p95 {pct(late, 95):.2f} s, p99 {pct(late, 99):.2f} s, max {max(late):.2f} s; "
          f"{'each exactly once' if not twice else f'{twice} fired more than once'}; outbox empty "
          f"{said(empty - until_last if empty is not None else None)} after the last was due; message delay "
          f"p50 {pct(delays, 50):.1f} s, p99 {pct(delays, 99):.1f} s [load {load()}]")


def run(url: str, name: str, args, workers: int, wake: int, due: int) -> None:
    runtime, template_id = prepared(url)
    sink = SmtpSink()
    processes = start_workers(workers, url, args.redis, sink.port)
    try:
        wait_until_serving(runtime, processes, template_id)
        if wake:
            wake_all(runtime, template_id, wake, name, processes)
        if due:
            continuous(runtime, template_id, due, args.over, name, workers)
    finally:
        stop_workers(processes)
        sink.stop()
        runtime.db.dispose()
    repeats = sink.repeats()
    print(f"    {name}: SMTP received {sum(sink.message_ids.values())} emails, "
          f"{'none twice' if not repeats else f'{repeats} repeated'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wake", type=int, default=10000, help="due episodes woken at once (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--due", type=int, default=1000, help="deadlines falling due continuously (0: skip)")
    parser.add_argument("--over", type=float, default=90.0, help="seconds over which they fall due")
    parser.add_argument("--sqlite", type=int, default=0, help="also wake this many on SQLite, one worker")
    parser.add_argument("--postgres", default=SERVER,
                        help="the PostgreSQL server; a database of its own is made and dropped")
    parser.add_argument("--redis", default=os.environ.get("ECAF_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
                        help="the Redis db the workers use (never a test's)")
    args = parser.parse_args()
    print(f"timers benchmark: load average {load()} on {os.cpu_count()} cores")
    with scratch_database("timers", args.postgres) as url:
        run(url, "postgresql", args, args.workers, args.wake, args.due)
    if args.sqlite:
        with tempfile.TemporaryDirectory() as directory:
            run(f"sqlite:///{directory}/bench.db", "sqlite", args, 1, args.sqlite, 0)


if __name__ == "__main__":
    main()
