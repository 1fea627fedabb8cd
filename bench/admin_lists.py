"""Administrators' and practitioners' lists at national scale, on PostgreSQL.

    python bench/admin_lists.py [--episodes 1000000] [--authorities 150] [--runs 20] [--postgres SERVER]
                                [--database-url URL [--reuse]] [--revision REV]

Seeds EPISODES episodes into PostgreSQL with COPY (bench/national_seed.py) spread over AUTHORITIES
local authorities (England has about 150; --authorities 1 is the worst case, every episode in the
one list being read), then times, through the same service functions the pages use:
(a) the administrator's dashboard, whole and count by count;
(b) the first page (50 rows) of every list, a page far down the open list and a filtered list;
(c) the task lists: a practitioner's ready tasks and the administrator's deadline alerts;
(d) the national index search ("Is there a CAF?") and the search requests queue;
(e) the reports and the System page's late deadlines.
By default the run makes its own scratch database on the server and drops it afterwards. Filling a
million episodes takes minutes: --database-url names a database to keep instead (its schema is
dropped and rebuilt), and with --reuse a database an earlier run filled with as many episodes is
only upgraded to REV, so an index can be measured before and after its migration (--revision 0013,
then --reuse).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import report, timed  # noqa: E402

from sqlalchemy import func, select, text  # noqa: E402

from app import heap, policy  # noqa: E402
from app.clock import now  # noqa: E402
from app.config import DEVELOPMENT_AUDIT_KEY  # noqa: E402
from app.db import Database  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.models import Authority, Episode, Organisation, SearchRequest, User  # noqa: E402
from app.services import admin_episodes as lists  # noqa: E402
from app.services import national_index, reports, search_queue, system_status  # noqa: E402
from app.services.task_list import open_alerts, ready_tasks  # noqa: E402
from bench.national_seed import seed, world  # noqa: E402
from bench.scratch import SERVER, reset_postgres, scratch_database  # noqa: E402


def _seeded(url: str, episodes: int) -> bool:
    """Does the database already hold a seeded world of this size?"""
    db = Database(url, audit_key=DEVELOPMENT_AUDIT_KEY)
    try:
        with db.session() as session:
            return (session.scalar(select(func.count()).select_from(Authority).where(Authority.code == "BIG")) == 1
                    and session.scalar(select(func.max(Episode.id))) == episodes)
    except Exception:
        return False
    finally:
        db.dispose()


def prepare(url: str, episodes: int, authorities: int, reuse: bool, revision: str) -> Database:
    if not url.startswith("postgres"):
        raise SystemExit("this benchmark seeds with PostgreSQL's COPY: give a postgresql:// URL")
    started = time.perf_counter()
    if reuse and _seeded(url, episodes):
        upgrade(url, revision)
        db = Database(url, audit_key=DEVELOPMENT_AUDIT_KEY)
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        print(f"reused the {episodes:,} episodes already seeded, upgraded to {revision} "
              f"in {time.perf_counter() - started:.0f} s")
        return db
    reset_postgres(url)
    upgrade(url, revision)
    db = Database(url, audit_key=DEVELOPMENT_AUDIT_KEY)  # a scratch database
    seed(db, episodes, authorities)
    print(f"seeded {episodes:,} episodes over {authorities} authorities in {time.perf_counter() - started:.0f} s "
          f"(PostgreSQL, COPY)")
    return db


def administrator(db: Database, authority_id: int) -> User:
    """The administrator whose pages are measured: vetted and trained, so the policy gives them their
    authority's episodes (the lists are scoped by `policy.authority_clause`, as on the pages)."""
    with db.session() as session:
        admin = session.scalar(select(User).where(User.username == "bench-admin"))
        if admin is None:
            organisation = session.scalar(select(Organisation).where(Organisation.authority_id == authority_id))
            today = now().date()
            admin = User(username="bench-admin", email="admin@big.test", full_name="Bench Administrator",
                         role="administrator", organisation_id=organisation.id, active=True, created_at=now(),
                         vetting_type="enhanced_dbs", vetting_reference="BENCH-1", vetting_checked_on=today,
                         training_completed_on=today)
            session.add(admin)
            session.flush()
        admin.organisation.authority  # loaded, for the policy outside the session
        session.expunge_all()
        return admin


def signed_in(db: Database, user_id: int) -> User:
    """A user as the web app holds them: detached, with organisation and authority loaded."""
    with db.session() as session:
        user = session.get(User, user_id)
        user.organisation.authority
        session.expunge_all()
        return user


def cpu_seconds(db: Database) -> tuple[float, float | None]:
    """CPU time used so far by this process and by the database's server processes serving it (read from
    /proc when the server runs on this machine, else None): steadier than wall time on a busy machine."""
    with db.session() as session:
        pids = session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    served = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return time.process_time(), None
        served += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return time.process_time(), served


def deep_page(db: Database, admin: User, stuck: int, number: int) -> dict:
    """The arguments of page `number` of the open list, as a reader gets there: by following the
    next page's link from page 1 (each link carries the key its page starts after)."""
    args = {"show": "open"}
    for _ in range(number - 1):
        filters = lists.read_filters(args)
        with db.session() as session:
            _, more = lists.episode_list(session, admin, filters, stuck_after_days=stuck)
        if not more:
            print(f"(the open list has {filters.page} pages: its last is measured as page {number})")
            break
        args = {key: str(value) for key, value in filters.as_args(page=filters.page + 1).items()}
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--authorities", type=int, default=150)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", default=SERVER, help="the PostgreSQL server (URL) to make a scratch database on")
    parser.add_argument("--database-url", help="a database to keep between runs instead (its schema is dropped "
                                               "unless --reuse finds it filled)")
    parser.add_argument("--reuse", action="store_true", help="keep a database an earlier run seeded as large")
    parser.add_argument("--revision", default="head", help="migrate the schema to this revision only")
    args = parser.parse_args()
    if args.database_url:
        measure_all(args, args.database_url)
    else:
        with scratch_database("admin_lists", args.postgres) as url:
            measure_all(args, url)


def measure_all(args, url: str) -> None:
    db = prepare(url, args.episodes, args.authorities, args.reuse, args.revision)
    seeded = world(db)
    admin, practitioner = administrator(db, seeded.authority_id), signed_in(db, seeded.practitioner_id)
    with db.session() as session:
        mine = session.scalar(select(func.count()).select_from(Episode)
                              .where(Episode.authority_id == seeded.authority_id))
    print(f"the authority measured holds {mine:,} episodes")
    heap.settle()  # as each server process does once loaded (app/heap.py)

    def measure(label: str, action) -> None:
        def run():
            with db.session() as session:
                action(session)
        run()
        before = cpu_seconds(db)
        report(label, timed(run, args.runs), width=56)
        after = cpu_seconds(db)
        print(f"{'':<4}CPU per run: eCAF {(after[0] - before[0]) / args.runs * 1000:.1f} ms" + (
            f", PostgreSQL {(after[1] - before[1]) / args.runs * 1000:.1f} ms" if after[1] is not None else ""))

    stuck = 14
    with db.session() as session:
        counts = lists.dashboard(session, admin, stuck_after_days=stuck)
    print("counts:", ", ".join(f"{k} {v:,}" for k, v in counts.counts.items()),
          "| by stage:", ", ".join(f"{k} {v:,}" for k, v in counts.by_stage.items()))

    print("\n(a) dashboard")
    measure(f"whole dashboard (every count, capped at {lists.COUNT_CAP:,})",
            lambda s: lists.dashboard(s, admin, stuck_after_days=stuck))
    in_authority = policy.authority_clause(admin, Episode.authority_id)
    for name in lists.COUNTED:
        measure(f"count: {name}", lambda s, name=name: lists.count(s, admin, name, stuck_after_days=stuck))
    for stage in lists.STAGES:
        measure(f"count: open in {stage}", lambda s, stage=stage: lists._capped_count(
            s, in_authority, Episode.stage == stage, lists._open()))
    measure("count: search requests waiting", lambda s: s.scalar(
        select(func.count()).select_from(SearchRequest).where(
            policy.authority_clause(admin, SearchRequest.authority_id), SearchRequest.status == "submitted")))

    print("\n(b) the lists (first page of 50 rows unless said)")
    page_100 = deep_page(db, admin, stuck, 100)
    for name in lists.LISTS:
        measure(f"list: {name}", lambda s, name=name: lists.episode_list(
            s, admin, lists.read_filters({"show": name}), stuck_after_days=stuck))
    measure("list: open, page 100", lambda s: lists.episode_list(
        s, admin, lists.read_filters(page_100), stuck_after_days=stuck))
    measure("list: open, delivery, one lead, started since", lambda s: lists.episode_list(
        s, admin, lists.read_filters({"show": "open", "stage": "delivery", "lead": "3",
                                      "started_from": "2026-01-01"}), stuck_after_days=stuck))
    measure("list: the filters' choices", lambda s: lists.filter_choices(s, admin))

    print("\n(c) task lists")
    measure("task list: a practitioner's ready tasks", lambda s: ready_tasks(s, practitioner, set()))
    measure("task list: a practitioner's overdue tasks", lambda s: ready_tasks(s, practitioner, {"overdue"}))
    measure("task list: the administrator's deadline alerts", lambda s: open_alerts(s, admin))

    print("\n(d) the national index (each search audited, as on the page) and search requests")
    keys = seeded.sample_child
    for label, given in (("name, birth date and postcode", ("family_name", "date_of_birth", "postcode")),
                         ("name and postcode", ("family_name", "postcode")),
                         ("name and birth date", ("family_name", "date_of_birth")),
                         ("birth date and postcode", ("date_of_birth", "postcode"))):
        searched = {key: keys[key] if key in given else None for key in keys}
        measure(f"index search: {label}", lambda s, searched=searched: national_index.search(
            s, practitioner, given_names=None, reason="benchmark of the index search", **searched))
    measure("search requests: the queue", lambda s: search_queue.queue(s, admin))

    def candidates(session):
        request = search_queue.queue(session, admin).waiting[0]
        search_queue.search_for_request(session, admin, request)
    measure("search requests: candidates for a request", candidates)

    print("\n(e) reports and the System page")
    period = reports.Period.last_twelve_months(now().date())
    for name in reports.TABLES:
        measure(f"report: {name}", lambda s, name=name: reports.table(s, admin, name, period))
    measure("system page: late deadlines", lambda s: system_status.late_timers(s, 60, admin))
    db.dispose()


if __name__ == "__main__":
    main()
