"""State benchmark: does an episode's stored workflow state, and the cost of its steps, grow with history?

    python bench/state.py [--cycles 1,50,100] [--requests 0,20] [--episodes 5] [--postgres SERVER]

For each backend (SQLite, and PostgreSQL in a scratch database of its own, dropped afterwards):
- review cycles: episodes go round the delivery loop (agree the action plan, review, continue);
  at each listed cycle it prints the stored state's bytes and the action-plan step's time;
- settled service requests: episodes in delivery ask a service and have the request accepted, the
  listed number of times; then it prints the state's bytes and the action-plan step's time.
Step time is the median over the episodes (wall time, and this process's CPU time: on SQLite that is
all of the step's work; on PostgreSQL the server's share is not in it). `--postgres ""`: SQLite only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from app.clock import now  # noqa: E402
from app.models import Episode, HumanTask, Service, ServiceTeamMember, User  # noqa: E402
from app.services.service_requests import decide, start_request  # noqa: E402
from bench.engine import PLAN, REVIEW, fresh_runtime, to_action_plan  # noqa: E402
from bench.small_world import VETTED  # noqa: E402
from bench.scratch import SERVER, scratch_database  # noqa: E402

REQUEST = {"needs": "An assessment of learning needs", "support_in_place": "School SEN support since March"}
ACCEPT = {"decision": "accept", "next_steps": "We will call the family on Monday"}


def numbers(text: str) -> list[int]:
    return sorted({int(part) for part in text.split(",") if part.strip()})


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


# ------------------------------------------------------------------ driving episodes
def ready_row(runtime, episode_id: int, name: str) -> HumanTask:
    with runtime.db.session() as session:
        row = session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name,
                                                     HumanTask.status == "ready"))
        if row is None:
            raise SystemExit(f"episode {episode_id} has no ready task {name!r}")
        session.expunge(row)
        return row


def step(runtime, episode_id: int, name: str, data: dict) -> tuple[float, float]:
    """Complete the ready task `name`; the (wall, CPU) seconds the step took. A failed step stops
    the benchmark: a figure for a step that did not happen would mean nothing."""
    row = ready_row(runtime, episode_id, name)
    wall, cpu = time.perf_counter(), time.process_time()
    result = runtime.engine.complete_task(episode_id, row.id, data, row.assigned_user_id or 1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if result.status == "error":
        raise SystemExit(f"episode {episode_id}: completing {name!r} failed: {result.error}")
    return wall, cpu


def state_bytes(runtime, episode_id: int) -> int:
    with runtime.db.session() as session:
        return len(session.get(Episode, episode_id).state.encode())


def detached_user(runtime, user_id: int) -> User:
    with runtime.db.session() as session:
        user = session.get(User, user_id)
        user.organisation  # read by the policy after the session closes
        session.expunge_all()
        return user


def service_team(runtime) -> tuple[int, int]:
    """A service of the bench authority with one team member: (service id, member id)."""
    with runtime.db.session() as session:
        organisation_id = session.get(User, 1).organisation_id
        member = User(username="team", email="team@bench.test", full_name="Team Member", role="service_team",
                      organisation_id=organisation_id, created_at=now(), **VETTED)
        session.add(member)
        session.flush()
        service = Service(authority_id=1, name="Educational Psychology", offers="Assessment",
                          contact_email="edpsych@bench.test", required_evidence=[], response_working_days=10)
        service.members.append(ServiceTeamMember(user_id=member.id, added_at=now()))
        session.add(service)
        session.flush()
        return service.id, member.id


def settle_request(runtime, episode_id: int, service_id: int, member_id: int) -> None:
    """Ask the service for help from the episode, and have the team accept."""
    request_id = start_request(runtime, episode_id, detached_user(runtime, 1), service_id)
    step(runtime, episode_id, "request_form", REQUEST)
    result = decide(runtime, request_id, detached_user(runtime, member_id), ACCEPT)
    if result.errors:
        raise SystemExit(f"request {request_id}: the decision was refused: {result.errors}")


# ------------------------------------------------------------------ the two measurements
def review_cycles(runtime, cycles: list[int], episodes: int) -> dict[int, tuple[int, float, float]]:
    """cycle -> (median state bytes, median wall s, median CPU s) of the action-plan step of that cycle."""
    ids = [to_action_plan(runtime) for _ in range(episodes)]
    seen = {}
    for cycle in range(1, max(cycles) + 1):
        times = [step(runtime, e, "action_plan", PLAN) for e in ids]
        if cycle in cycles:
            seen[cycle] = (int(statistics.median(state_bytes(runtime, e) for e in ids)),
                           statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
        for e in ids:
            step(runtime, e, "review", REVIEW)
    return seen


def settled_requests(runtime, counts: list[int], episodes: int) -> dict[int, tuple[int, float, float]]:
    """count -> (median state bytes, median wall s, median CPU s) of the action-plan step after that
    many settled requests."""
    service_id, member_id = service_team(runtime)
    seen = {}
    for count in counts:
        ids = [to_action_plan(runtime) for _ in range(episodes)]
        for e in ids:
            for _ in range(count):
                settle_request(runtime, e, service_id, member_id)
        times = [step(runtime, e, "action_plan", PLAN) for e in ids]
        seen[count] = (int(statistics.median(state_bytes(runtime, e) for e in ids)),
                       statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
    return seen


def report(backend: str, what: str, seen: dict[int, tuple[int, float, float]]) -> None:
    first = min(seen)
    base_bytes, base_wall, base_cpu = seen[first]
    for n, (size, wall, cpu) in sorted(seen.items()):
        ratio = "" if n == first else (f"  ({size / base_bytes:.2f}x the state, {wall / base_wall:.2f}x the step,"
                                       f" {cpu / base_cpu:.2f}x its CPU, of {first} {what})")
        print(f"  {backend}: {n:>3} {what}: state {size:>7} B, action-plan step {wall * 1000:7.1f} ms "
              f"(CPU {cpu * 1000:6.1f} ms){ratio}", flush=True)


def measure(backend: str, url: str, args) -> None:
    runtime = fresh_runtime(url)
    try:
        if args.cycles:
            report(backend, "review cycles", review_cycles(runtime, args.cycles, args.episodes))
        if args.requests:
            report(backend, "settled requests", settled_requests(runtime, args.requests, args.episodes))
    finally:
        runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=numbers, default=[1, 50, 100], help="review cycles to report, e.g. 1,50,100")
    parser.add_argument("--requests", type=numbers, default=[0, 20], help="settled service requests, e.g. 0,20")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per figure (their median is printed)")
    parser.add_argument("--postgres", default=SERVER,
                        help="the PostgreSQL server for a scratch database of this run; empty: SQLite only")
    args = parser.parse_args()

    print(f"State and step cost against history ({load()}, {date.today()})", flush=True)
    measure("sqlite", f"sqlite:///{tempfile.mkdtemp()}/bench.db", args)
    if args.postgres:
        try:
            with scratch_database("state", args.postgres) as url:
                measure("postgresql", url, args)
        except OperationalError as exc:
            print(f"  PostgreSQL not reachable ({type(exc).__name__}): its figures are skipped")
    print(f"done ({load()})")


if __name__ == "__main__":
    main()
