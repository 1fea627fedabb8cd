"""Administrators' lists at national scale: dashboard counts and each list's first page.

    python bench/admin_lists.py [--episodes 1000000] [--authorities 150] [--runs 20] [--database-url URL]

Seeds EPISODES episodes into PostgreSQL with COPY (children, episodes, one task per open episode,
deadline alerts) spread over AUTHORITIES local authorities (England has about 150; --authorities 1
is the worst case, every episode in the one list being read), ANALYZEs, then times one
authority's pages through the same service functions the pages use:
(a) the whole dashboard (every count), and each count alone;
(b) the first page (50 rows) of every list, and page 100 of the open list.
The database (default ecaf_bench, created if missing) has its public schema dropped and rebuilt:
point it at a scratch database.
"""
from __future__ import annotations

import argparse
import io
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import report, timed  # noqa: E402

from sqlalchemy import func, select, text  # noqa: E402

from app import policy  # noqa: E402
from app.clock import now  # noqa: E402
from app.config import DEVELOPMENT_AUDIT_KEY, PROJECT_ROOT  # noqa: E402
from app.db import Database  # noqa: E402
from app.engine.library import Bundle, current_version, deploy  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.models import Authority, Episode, Organisation, User  # noqa: E402
from app.services import admin_episodes as lists  # noqa: E402
from bench.scratch import SCRATCH_POSTGRES, reset_postgres  # noqa: E402

PRACTITIONERS = 500


def fresh(url: str) -> Database:
    if not url.startswith("postgres"):
        raise SystemExit("this benchmark seeds with PostgreSQL's COPY: give a postgresql:// URL")
    reset_postgres(url)
    upgrade(url)
    return Database(url, audit_key=DEVELOPMENT_AUDIT_KEY)  # a scratch database


def _copy(raw, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            while chunk := buffer.read(1 << 20):
                copy.write(chunk)


def seed(db: Database, episodes: int, authorities: int) -> int:
    rng = random.Random(7)
    moment = now()
    with db.session() as session:
        deploy(session, Bundle.from_directory(PROJECT_ROOT / "processes"))
        version_id = current_version(session).id
        authority = Authority(code="BIG", name="Bigshire")
        session.add(authority)
        session.add_all([Authority(code=f"A{n}", name=f"Authority {n}") for n in range(1, authorities)])
        session.flush()
        authority_ids = session.scalars(select(Authority.id).order_by(Authority.id)).all()
        organisation = Organisation(name="Bigshire Schools", kind="school", authority_id=authority.id)
        session.add(organisation)
        session.flush()
        for i in range(PRACTITIONERS):
            session.add(User(username=f"u{i}", email=f"u{i}@big.test", full_name=f"Practitioner {i}",
                             role="practitioner", organisation_id=organisation.id, created_at=moment))
        session.flush()
        users = session.scalars(select(User.id)).all()
        authority_id = authority.id

    def when(days_ago: float) -> str:
        return (moment - timedelta(days=days_ago)).isoformat()

    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        _copy(driver, "child", ["id", "given_names", "family_name", "date_of_birth", "postcode", "home_authority_id",
                                "created_at", "shielded"],
              ((i, f"Child{i}", f"Family{i % 5000}", "2015-01-01", f"BG{i % 90} 1AA", authority_ids[i % authorities],
                when(400), "f")
               for i in range(1, episodes + 1)))
        plan = []
        for i in range(1, episodes + 1):
            roll = rng.random()
            age = rng.uniform(0, 720)
            if roll < 0.27:
                status, stage, timer = "closed", "closed", None
            elif roll < 0.29:
                status, stage, timer = "error", rng.choice(["assessment", "delivery"]), None
            elif roll < 0.30:
                status, stage, timer = "suspended", "delivery", None
            else:
                status = "open"
                stage = rng.choice(["preparation", "assessment", "assessment", "delivery", "delivery", "delivery"])
                timer = when(-rng.uniform(-2, 40)) if stage in ("preparation", "assessment") else when(-rng.uniform(1, 60))
            updated = min(age, rng.uniform(0, 40))
            plan.append((i, status, stage, timer, age, updated))
        _copy(driver, "episode", [
            "id", "child_id", "authority_id", "process_version_id", "status", "stage", "child_protection",
            "legal_hold", "consent_state", "lock_version", "next_timer_at", "last_error", "error_task",
            "originator_id", "lead_professional_id", "started_at", "updated_at", "submitted_at", "closed_at"],
            ((i, i, authority_ids[i % authorities], version_id, status, stage, "t" if i % 50 == 0 else "f", "f", "given", 1, timer,
              "index unavailable" if status == "error" else None, "Tell the national index" if status == "error" else None,
              users[i % PRACTITIONERS], users[(i + 1) % PRACTITIONERS], when(age), when(updated),
              None if stage in ("preparation", "assessment") else when(age - 20),
              when(updated) if status == "closed" else None)
             for i, status, stage, timer, age, updated in plan))
        _copy(driver, "human_task", [
            "episode_id", "task_id", "name", "title", "stage", "lane", "assigned_user_id", "status", "created_at",
            "due_at"],
            ((i, f"t{i}", "action_plan", "Agree the action plan", stage, "Lead professional", users[(i + 1) % PRACTITIONERS],
              "ready", when(updated), when(-rng.uniform(-10, 30)))
             for i, status, stage, timer, age, updated in plan if status in ("open", "error", "suspended")))
        _copy(driver, "admin_alert", ["episode_id", "authority_id", "kind", "message", "raised_at"],
              ((i, authority_ids[i % authorities], "assessment_overdue", "Not submitted within 35 days", when(1))
               for i, status, stage, timer, age, updated in plan if stage == "assessment" and i % 97 == 0))
        with driver.cursor() as cursor:
            cursor.execute("SELECT setval('episode_id_seq', %s)", (episodes,))
            cursor.execute("SELECT setval('child_id_seq', %s)", (episodes,))
        driver.commit()
    finally:
        raw.close()
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return authority_id


def administrator(db: Database, authority_id: int) -> User:
    """The administrator whose pages are measured: vetted and trained, so the policy gives them their
    authority's episodes (the lists are scoped by `policy.authority_clause`, as on the pages)."""
    with db.session() as session:
        organisation = session.scalar(select(Organisation).where(Organisation.authority_id == authority_id))
        today = now().date()
        admin = User(username="bench-admin", email="admin@big.test", full_name="Bench Administrator",
                     role="administrator", organisation_id=organisation.id, active=True, created_at=now(),
                     vetting_type="enhanced_dbs", vetting_reference="BENCH-1", vetting_checked_on=today,
                     training_completed_on=today)
        session.add(admin)
        session.flush()
        admin.organisation  # loaded, for the policy outside the session
        return admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--authorities", type=int, default=150)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=SCRATCH_POSTGRES)
    args = parser.parse_args()
    db = fresh(args.database_url)
    started = time.perf_counter()
    authority_id = seed(db, args.episodes, args.authorities)
    admin = administrator(db, authority_id)
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Episode))
        mine = session.scalar(select(func.count()).select_from(Episode).where(Episode.authority_id == authority_id))
    print(f"seeded {total:,} episodes over {args.authorities} authorities in {time.perf_counter() - started:.0f} s "
          f"(PostgreSQL, COPY); the authority measured holds {mine:,}")

    stuck = 14

    def board():
        with db.session() as session:
            return lists.dashboard(session, admin, stuck_after_days=stuck)

    counts = board()
    print("counts:", ", ".join(f"{k} {v:,}" for k, v in counts.counts.items()),
          "| by stage:", ", ".join(f"{k} {v:,}" for k, v in counts.by_stage.items()))
    print("\n(a) dashboard")
    report(f"whole dashboard (every count, capped at {lists.COUNT_CAP:,})", timed(board, args.runs, warm=True))
    conditions = lists._conditions(now(), stuck)
    for name in lists.LISTS:
        if name in ("open", "closed"):
            continue

        def count(name=name):
            with db.session() as session:
                lists._capped_count(session, policy.authority_clause(admin, Episode.authority_id), conditions[name])
        report(f"count: {name}", timed(count, args.runs, warm=True))

    print("\n(b) first page of each list (50 rows)")
    for name in lists.LISTS:
        def first_page(name=name):
            with db.session() as session:
                lists.episode_list(session, admin, lists.read_filters({"show": name}), stuck_after_days=stuck)
        report(f"list: {name}", timed(first_page, args.runs, warm=True))

    def deep_page():
        with db.session() as session:
            lists.episode_list(session, admin, lists.read_filters({"show": "open", "page": "100"}),
                               stuck_after_days=stuck)
    report("list: open, page 100", timed(deep_page, args.runs, warm=True))

    def filtered():
        with db.session() as session:
            lists.episode_list(session, admin, lists.read_filters(
                {"show": "open", "stage": "delivery", "lead": "3", "started_from": "2026-01-01"}),
                stuck_after_days=stuck)
    report("list: open, delivery, one lead, started since", timed(filtered, args.runs, warm=True))
    db.dispose()


if __name__ == "__main__":
    main()
