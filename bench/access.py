"""Access benchmark: what membership, consent, the audit chain and the index cost at volume.

    python bench/access.py [--episodes 20000] [--runs 30] [--postgres SERVER | --database-url URL]

Seeds EPISODES open episodes in bulk (each with a child, three members, a consent statement that
excludes the police, a ready task and an index entry), then prints:
(a) the policy on every query: counting the episodes a practitioner may open, opening one
    episode through `visible_episode`, and the practitioner's task list;
(b) the audit chain: appending rows one transaction each (rows per second), and
    `ecaf audit verify` over the whole trail (rows per second);
(c) a national index search (exact and near matches, audited) over EPISODES entries.
SQLite in a temporary file unless --postgres names a PostgreSQL server (a scratch database is made
on it and dropped afterwards) or --database-url a database to use (created if missing, its schema
dropped and rebuilt).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import report, timed  # noqa: E402

from sqlalchemy import func, insert, select  # noqa: E402

from app import audit, policy  # noqa: E402
from app.clock import now  # noqa: E402
from app.config import DEVELOPMENT_AUDIT_KEY, PROJECT_ROOT  # noqa: E402
from app.db import Database  # noqa: E402
from app.engine.library import Bundle, current_version, deploy  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.models import (Authority, Child, Consent, ConsentExclusion, Episode, EpisodeMember,  # noqa: E402
                        HumanTask, IndexEntry, Organisation, User)
from app.services import national_index  # noqa: E402
from app.services.task_list import ready_tasks  # noqa: E402
from bench.scratch import reset_postgres, scratch_database  # noqa: E402

VETTED = {"vetting_type": "enhanced_dbs", "vetting_reference": "B1", "vetting_checked_on": date(2025, 1, 1),
          "vetting_expires_on": date(2035, 1, 1), "training_completed_on": date(2025, 1, 1)}
PRACTITIONERS = 200
FAMILY_NAMES = ["Begum", "Carter", "Nowak", "Ellis", "Smith", "Jones", "Khan", "Brown", "Patel", "Wilson"]


def fresh_database(url: str | None) -> Database:
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='ecaf-bench-access-')) / 'bench.db'}"
    elif url.startswith("postgres"):
        reset_postgres(url)
    upgrade(url)
    return Database(url, audit_key=DEVELOPMENT_AUDIT_KEY)  # a scratch database


def seed(db: Database, episodes: int) -> dict:
    """Bulk rows, as a national system accumulates them; no workflow runs (nothing here loads one)."""
    moment = now()
    with db.session() as session:
        deploy(session, Bundle.from_directory(PROJECT_ROOT / "processes"))
        version = current_version(session)
        authority = Authority(code="BEN", name="Benchshire")
        session.add(authority)
        session.flush()
        school = Organisation(name="Bench School", kind="school", authority_id=authority.id)
        police = Organisation(name="Bench Police", kind="police", authority_id=authority.id)
        session.add_all([school, police])
        session.flush()
        session.execute(insert(User), [
            {"username": f"p{i}", "email": f"p{i}@bench.test", "full_name": f"Practitioner {i}", "role": "practitioner",
             "organisation_id": (police if i == 0 else school).id, "active": True, "failed_sign_ins": 0,
             "demo_account": False, **VETTED} for i in range(PRACTITIONERS)])
        users = session.scalars(select(User.id).order_by(User.id)).all()
        session.execute(insert(Child), [
            {"given_names": f"Child{i}", "family_name": FAMILY_NAMES[i % len(FAMILY_NAMES)] + str(i // 1000),
             "date_of_birth": date(2010, 1, 1) + timedelta(days=i % 3000), "postcode": f"BE{i % 90 + 1} {i % 9}AA",
             "home_authority_id": authority.id, "created_at": moment, "shielded": False} for i in range(episodes)])
        children = session.scalars(select(Child.id).order_by(Child.id)).all()
        session.execute(insert(Episode), [
            {"child_id": c, "authority_id": authority.id, "process_version_id": version.id, "status": "open",
             "stage": "delivery", "consent_state": "given", "child_protection": False, "legal_hold": False,
             "lock_version": 1, "originator_id": users[i % PRACTITIONERS],
             "lead_professional_id": users[(i + 1) % PRACTITIONERS], "started_at": moment, "updated_at": moment}
            for i, c in enumerate(children)])
        rows = session.execute(select(Episode.id, Episode.originator_id, Episode.lead_professional_id,
                                      Episode.child_id).order_by(Episode.id)).all()
        session.execute(insert(EpisodeMember), [
            {"episode_id": e, "user_id": u, "role": role, "added_at": moment}
            for i, (e, o, lead, _) in enumerate(rows)
            for u, role in ((o, "originator"), (lead, "lead_professional"),
                            (users[(i + 2) % PRACTITIONERS], "tac_member"))])
        session.execute(insert(Consent), [
            {"episode_id": e, "to_storage": True, "to_sharing": True, "has_parental_responsibility": True,
             "competence_assessed": False, "recorded_at": moment} for e, *_ in rows])
        consents = dict(session.execute(select(Consent.episode_id, Consent.id)).all())
        session.execute(insert(ConsentExclusion), [
            {"consent_id": consents[e], "episode_id": e, "organisation_kind": "police"} for e, *_ in rows])
        session.execute(insert(HumanTask), [
            {"episode_id": e, "task_id": f"bench-{e}", "name": "action_plan", "title": "Agree the action plan",
             "stage": "delivery", "lane": "Lead professional", "assigned_user_id": lead, "status": "ready",
             "created_at": moment, "due_at": moment + timedelta(days=i % 30)}
            for i, (e, _, lead, _) in enumerate(rows)])
        children_by_id = {c.id: c for c in session.scalars(select(Child))}
        session.execute(insert(IndexEntry), [
            {"episode_id": e, "child_id": c, "family_name": children_by_id[c].family_name,
             "date_of_birth": children_by_id[c].date_of_birth, "postcode": children_by_id[c].postcode,
             "authority_id": authority.id, "contact": {"name": "Practitioner"}, "status": "open", "updated_at": moment}
            for e, _, _, c in rows])
        sample_child = children_by_id[children[len(children) // 2]]
        return {"user": users[5], "episode": rows[len(rows) // 2][0], "child": sample_child}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--audit-rows", type=int, default=2000)
    parser.add_argument("--database-url", help="a database to fill, its schema dropped first")
    parser.add_argument("--postgres", help="a PostgreSQL server (URL) to make a scratch database on, dropped after")
    args = parser.parse_args()
    if args.postgres and not args.database_url:
        with scratch_database("access", args.postgres) as url:
            measure(args, url)
    else:
        measure(args, args.database_url)


def measure(args, url: str | None) -> None:
    db = fresh_database(url)
    print(f"eCAF access benchmark: {args.episodes} open episodes, {PRACTITIONERS} practitioners, "
          f"{'PostgreSQL' if db.is_postgresql else 'SQLite'}")
    started = time.perf_counter()
    world = seed(db, args.episodes)
    print(f"seeded in {time.perf_counter() - started:.1f} s")

    with db.session() as session:
        # As the web app holds the signed-in user: detached, with organisation and authority loaded.
        user = session.get(User, world["user"])
        _ = user.organisation.authority
        session.expunge_all()
    with db.session() as session:
        visible = session.scalar(select(func.count()).select_from(Episode).where(policy.episode_filter(user)))
    print(f"\n(a) the policy: practitioner p5 may open {visible} of {args.episodes} episodes")

    def count_visible():
        with db.session() as session:
            session.scalar(select(func.count()).select_from(Episode).where(policy.episode_filter(user)))

    def open_one():
        with db.session() as session:
            policy.visible_episode(session, user, world["episode"])

    def task_list():
        with db.session() as session:
            ready_tasks(session, user, set())

    report("episodes a practitioner may open (count)", timed(count_visible, args.runs))
    report("one episode through visible_episode", timed(open_one, args.runs))
    report("the practitioner's task list", timed(task_list, args.runs))

    print("\n(b) the audit chain")
    started = time.perf_counter()
    for i in range(args.audit_rows):
        with db.session() as session:
            audit.record(session, "episode_viewed", actor_id=world["user"], episode_id=world["episode"], n=i)
    elapsed = time.perf_counter() - started
    print(f"{'append, one transaction per row':<52} {args.audit_rows / elapsed:8.0f} rows/s "
          f"({elapsed / args.audit_rows * 1000:.2f} ms each)")
    started = time.perf_counter()
    result = audit.verify_chain(db)
    elapsed = time.perf_counter() - started
    assert result.intact, result.problem
    print(f"{'ecaf audit verify over ' + str(result.checked) + ' rows':<52} {result.checked / elapsed:8.0f} rows/s")

    print("\n(c) the national index")
    child = world["child"]

    def search():
        with db.session() as session:
            national_index.search(session, user, given_names=None, family_name=child.family_name,
                                  date_of_birth=child.date_of_birth, postcode=child.postcode,
                                  reason="benchmark of the index search")

    report(f"search over {args.episodes} entries (audited)", timed(search, args.runs))
    db.dispose()


if __name__ == "__main__":
    main()
