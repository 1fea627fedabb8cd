"""A national system's rows, written with PostgreSQL's COPY: the data the list benchmarks read.

EPISODES episodes over AUTHORITIES local authorities (the first, Bigshire, is the one measured),
each with its child, its originator and lead professional as members, a ready task while open,
an index entry, deadline alerts for some late assessments, and search requests waiting for each
authority's administrator. Children's keys are spread as a country's are: about 2,900 postcode
districts, 5,000 family names, eighteen years of birthdays.
"""
from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select, text

from app.clock import now
from app.config import PROJECT_ROOT
from app.db import Database
from app.engine.library import Bundle, current_version, deploy
from app.models import Authority, Episode, Organisation, SearchRequest, SearchRequestChild, User

PRACTITIONERS = 500
DISTRICTS = 2900
FAMILY_NAMES = 5000
BIRTHDAYS = 18 * 365
VETTED = {"vetting_type": "enhanced_dbs", "vetting_reference": "BENCH", "vetting_checked_on": date(2025, 1, 1),
          "vetting_expires_on": date(2035, 1, 1), "training_completed_on": date(2025, 1, 1)}


@dataclass(frozen=True)
class World:
    authority_id: int
    practitioner_id: int
    sample_child: dict  # the keys of one indexed child, for the searches


def family_name(i: int) -> str:
    return f"Family{(i * 7) % FAMILY_NAMES}"


def birthday(i: int) -> date:
    return date(2008, 1, 1) + timedelta(days=(i * 37) % BIRTHDAYS)


def postcode(i: int) -> str:
    return f"D{(i * 13) % DISTRICTS} {i % 9}{chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}"


def _copy(raw, table: str, columns: list[str], rows) -> None:
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
                if buffer.tell() > 1 << 20:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())


def _people(db: Database, authorities: int) -> tuple[int, list[int], list[int]]:
    moment = now()
    with db.session() as session:
        deploy(session, Bundle.from_directory(PROJECT_ROOT / "processes"))
        authority = Authority(code="BIG", name="Bigshire")
        session.add(authority)
        session.add_all([Authority(code=f"A{n}", name=f"Authority {n}") for n in range(1, authorities)])
        session.flush()
        authority_ids = session.scalars(select(Authority.id).order_by(Authority.id)).all()
        organisation = Organisation(name="Bigshire Schools", kind="school", authority_id=authority.id)
        session.add(organisation)
        session.flush()
        session.add_all([User(username=f"u{i}", email=f"u{i}@big.test", full_name=f"Practitioner {i}",
                              role="practitioner", organisation_id=organisation.id, created_at=moment, **VETTED)
                         for i in range(PRACTITIONERS)])
        session.flush()
        return authority.id, list(authority_ids), session.scalars(select(User.id).order_by(User.id)).all()


def _plan(episodes: int, rng: random.Random) -> list[tuple]:
    plan = []
    for i in range(1, episodes + 1):
        roll, age = rng.random(), rng.uniform(0, 720)
        if roll < 0.27:
            status, stage, timer = "closed", "closed", None
        elif roll < 0.29:
            status, stage, timer = "error", rng.choice(["assessment", "delivery"]), None
        elif roll < 0.30:
            status, stage, timer = "suspended", "delivery", None
        else:
            status = "open"
            stage = rng.choice(["preparation", "assessment", "assessment", "delivery", "delivery", "delivery"])
            timer = rng.uniform(-2, 40) if stage in ("preparation", "assessment") else rng.uniform(1, 60)
        plan.append((i, status, stage, timer, age, min(age, rng.uniform(0, 40))))
    return plan


def seed(db: Database, episodes: int, authorities: int) -> World:
    rng = random.Random(7)
    moment = now()
    authority_id, authority_ids, users = _people(db, authorities)
    with db.session() as session:
        version_id = current_version(session).id

    def when(days_ago: float | None) -> str | None:
        return None if days_ago is None else (moment - timedelta(days=days_ago)).isoformat()

    def authority_of(i: int) -> int:
        return authority_ids[i % authorities]

    plan = _plan(episodes, rng)
    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        _copy(driver, "child", ["id", "given_names", "family_name", "date_of_birth", "postcode", "home_authority_id",
                                "created_at", "shielded"],
              ((i, f"Child{i}", family_name(i), birthday(i), postcode(i), authority_of(i), when(400), "f")
               for i in range(1, episodes + 1)))
        _copy(driver, "episode", [
            "id", "child_id", "authority_id", "process_version_id", "status", "stage", "child_protection",
            "legal_hold", "consent_state", "lock_version", "next_timer_at", "last_error", "error_task",
            "originator_id", "lead_professional_id", "started_at", "updated_at", "submitted_at", "closed_at"],
            # One in 47 a child-protection case: a prime, so each of 150 authorities gets its share.
            ((i, i, authority_of(i), version_id, status, stage, "t" if i % 47 == 0 else "f", "f", "given", 1,
              when(None if timer is None else -timer),
              "index unavailable" if status == "error" else None,
              "Tell the national index" if status == "error" else None,
              users[i % PRACTITIONERS], users[(i + 1) % PRACTITIONERS], when(age), when(updated),
              None if stage in ("preparation", "assessment") else when(age - 20),
              when(updated) if status == "closed" else None)
             for i, status, stage, timer, age, updated in plan))
        _copy(driver, "episode_member", ["episode_id", "user_id", "role", "added_at"],
              ((i, users[(i + offset) % PRACTITIONERS], role, when(age))
               for i, status, stage, timer, age, updated in plan
               for offset, role in ((0, "originator"), (1, "lead_professional"))))
        _copy(driver, "human_task", [
            "episode_id", "task_id", "name", "title", "stage", "lane", "assigned_user_id", "status", "created_at",
            "due_at"],
            ((i, f"t{i}", "action_plan", "Agree the action plan", stage, "Lead professional",
              users[(i + 1) % PRACTITIONERS], "ready", when(updated), when(-rng.uniform(-10, 30)))
             for i, status, stage, timer, age, updated in plan if status in ("open", "error", "suspended")))
        _copy(driver, "admin_alert", ["episode_id", "authority_id", "kind", "message", "raised_at"],
              ((i, authority_of(i), "assessment_overdue", "Not submitted within 35 days", when(1))
               for i, status, stage, timer, age, updated in plan if stage == "assessment" and i % 97 == 0))
        contact = json.dumps({"name": "Practitioner", "organisation": "Bigshire Schools"})
        _copy(driver, "index_entry", ["episode_id", "child_id", "family_name", "date_of_birth", "postcode",
                                      "authority_id", "contact", "status", "updated_at"],
              ((i, i, family_name(i), birthday(i), postcode(i), authority_of(i), contact,
                "closed" if status == "closed" else "open", when(updated))
               for i, status, stage, timer, age, updated in plan))
        with driver.cursor() as cursor:
            cursor.execute("SELECT setval('episode_id_seq', %s)", (episodes,))
            cursor.execute("SELECT setval('child_id_seq', %s)", (episodes,))
        driver.commit()
    finally:
        raw.close()
    _search_requests(db, authority_ids, users, moment)
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return world(db)


def _search_requests(db: Database, authority_ids: list[int], users: list[int], moment) -> None:
    """Five waiting and twenty answered per authority, each asking about a child of that authority
    (its keys exactly as recorded): what a queue holds on a working day."""
    with db.session() as session:
        for n, authority_id in enumerate(authority_ids):
            for k in range(25):
                i = n + len(authority_ids) * (k + 1)  # a child whose episode is the authority's
                answered = k >= 5
                request = SearchRequest(
                    requester_id=users[i % PRACTITIONERS], authority_id=authority_id, reason="Starting a CAF",
                    status="answered" if answered else "submitted", created_at=moment - timedelta(hours=k),
                    answered_at=moment - timedelta(minutes=k) if answered else None,
                    answer="Found" if answered else None)
                request.children.append(SearchRequestChild(
                    given_names=f"Child{i}", family_name=family_name(i), date_of_birth=birthday(i),
                    postcode=postcode(i)))
                session.add(request)


def world(db: Database) -> World:
    """What the measurements need from a seeded database (also one filled by an earlier run)."""
    with db.session() as session:
        authority_id = session.scalar(select(Authority.id).where(Authority.code == "BIG"))
        practitioner_id = session.scalar(select(User.id).where(User.username == "u5"))
        sample = session.scalar(select(Episode.child_id).where(Episode.authority_id == authority_id)
                                .order_by(Episode.id.desc()).limit(1))
    return World(authority_id, practitioner_id, {"family_name": family_name(sample),
                                                 "date_of_birth": birthday(sample), "postcode": postcode(sample)})
