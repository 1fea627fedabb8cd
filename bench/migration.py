"""Migration benchmark: a dry run and a migration over N open episodes in Assessment.

    python bench/migration.py [--episodes 1000] [--postgres SERVER]

Starts one episode through the engine and takes it to Assessment, copies it to N episodes
(rows inserted in bulk, each with its ready task), deploys a version 2 (a 28-day limit and a
sign-off task, as in tests/process_models.py), then times the dry run over all N and the
migration of all N (one transaction each). Prints episodes per second and the peak memory
(resident set) each phase added. On SQLite (a temporary file), then on PostgreSQL in a scratch
database of this run on the server --postgres names (default 127.0.0.1:5432), dropped afterwards;
`--postgres ""`: SQLite only.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402

from app.clock import now  # noqa: E402
from app.engine.library import Bundle, deploy  # noqa: E402
from app.models import Child, Episode, HumanTask, User  # noqa: E402
from app.services import process_migrations as migrations  # noqa: E402
from bench.engine import CHECKLIST, CONSENT, complete, fresh_runtime, new_child  # noqa: E402
from bench.scratch import SERVER, scratch_database  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def episodes_in_assessment(runtime, count: int) -> None:
    template_id = runtime.engine.start_episode(child_id=new_child(runtime), originator_id=1).episode_id
    complete(runtime, template_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, template_id, "obtain_consent", CONSENT)
    with runtime.db.session() as session:
        template = session.get(Episode, template_id)
        tasks = session.scalars(select(HumanTask).where(HumanTask.episode_id == template_id)).all()
        first_child = session.scalar(select(func.max(Child.id))) + 1
        first_episode = session.scalar(select(func.max(Episode.id))) + 1
        session.execute(insert(Child), [dict(id=first_child + i, given_names="Bench", family_name=f"Clone-{i}",
                                             date_of_birth=template.child.date_of_birth, home_authority_id=1,
                                             created_at=now()) for i in range(count - 1)])
        columns = {c.key: getattr(template, c.key) for c in Episode.__table__.columns if c.key != "id"}
        session.execute(insert(Episode), [{**columns, "id": first_episode + i, "child_id": first_child + i}
                                          for i in range(count - 1)])
        task_columns = [{c.key: getattr(t, c.key) for c in HumanTask.__table__.columns if c.key != "id"} for t in tasks]
        session.execute(insert(HumanTask), [{**row, "episode_id": first_episode + i}
                                            for i in range(count - 1) for row in task_columns])


def deploy_version_2(runtime) -> None:
    from tests.process_models import signoff_model

    with tempfile.TemporaryDirectory() as scratch, runtime.db.session() as session:
        deploy(session, Bundle.from_directory(signoff_model(Path(scratch))), change_note="28 days; sign-off")


def process_owner(runtime) -> int:
    with runtime.db.session() as session:
        user = session.scalar(select(User).where(User.username == "u1"))
        user.role = "process_owner"
        return user.id


def measure(runtime, label: str, count: int) -> None:
    episodes_in_assessment(runtime, count)
    deploy_version_2(runtime)
    owner = process_owner(runtime)

    before = peak_mb()
    t0 = time.perf_counter()
    plan = migrations.dry_run(runtime, "caf_episode", 1, 2)
    dry = time.perf_counter() - t0
    dry_memory = peak_mb() - before
    assert len(plan.migratable) == count, [e.check.reasons for e in plan.refused][:3]

    before = peak_mb()
    t0 = time.perf_counter()
    result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=None, note="bench", by_user_id=owner)
    run = time.perf_counter() - t0
    run_memory = peak_mb() - before
    assert len(result.migrated) == count, (len(result.refused), len(result.failed))

    print(f"{label}: {count} episodes in Assessment")
    print(f"  dry run:   {dry:6.2f} s  {count / dry:7.0f} episodes/s  peak memory +{dry_memory:.0f} MB")
    print(f"  migration: {run:6.2f} s  {count / run:7.0f} episodes/s  peak memory +{run_memory:.0f} MB "
          f"(one transaction per episode)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--postgres", default=SERVER,
                        help="the PostgreSQL server for a scratch database of this run; empty: SQLite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        measure(fresh_runtime(f"sqlite:///{scratch}/bench.db"), "SQLite", args.episodes)
    if args.postgres:
        with scratch_database("migration", args.postgres) as url:
            runtime = fresh_runtime(url)
            measure(runtime, "PostgreSQL", args.episodes)
            runtime.db.dispose()
    print(f"process peak resident memory: {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
