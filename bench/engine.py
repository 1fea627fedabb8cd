"""Engine benchmark: prints what one CAF step costs, bare and through eCAF.

    python bench/engine.py [--steps 60] [--floor-runs 200] [--postgres URL]

(a) the bare SpiffWorkflow floor for one user-task step of the CAF process (deserialize,
    complete "Agree the action plan", run the engine, serialize; in memory, handlers stubbed);
(b) the same step through the eCAF engine on SQLite and PostgreSQL (median, p95, ratio to a);
(c) stored bytes per episode.
How the state and the step grow with review cycles and service requests is bench/state.py's;
waking due episodes with real workers is bench/timers.py's.
PostgreSQL figures use a scratch database of this run on the server --postgres names (default
127.0.0.1:5432; bench/scratch.py), dropped afterwards. `--postgres ""` measures SQLite only.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, closing
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from app.clock import now  # noqa: E402
from app.config import PROJECT_ROOT  # noqa: E402
from app.engine.scripting import ProcessExpressionEnvironment  # noqa: E402
from app.engine.serializer import SERIALIZER  # noqa: E402
from app.jobs.runtime import Runtime  # noqa: E402
from app.models import Artefact, Child, Episode, HumanTask  # noqa: E402
from bench.scratch import SERVER, scratch_database  # noqa: E402
from bench.small_world import small_world  # noqa: E402

TODAY = date.today()
CHECKLIST = {"decision": "full_caf"}
CONSENT = {"decision": "given", "subject": "child", "given_by_name": "Parent", "relationship": "Mother",
           "has_parental_responsibility": True, "consent_to_storage": True, "consent_to_sharing": True,
           "method": "written", "given_on": TODAY.isoformat()}
ASSESSMENT = {"section_a_administration": {"date_started": TODAY.isoformat()},
              "section_b_child": {"given_names": "Bench", "family_name": "Child", "date_of_birth": "2015-01-01"},
              "section_i_conclusions": {"key_needs": "x" * 2000}}
PLAN = {"actions": [{"identified_need": "Attendance", "action": "Morning club", "responsible": "School"}] * 5,
        "headline_outcomes": ["education"], "next_review_date": (TODAY + timedelta(days=42)).isoformat()}
REVIEW = {"review_date": TODAY.isoformat(), "outcome": "continue",
          "next_review_date": (TODAY + timedelta(days=42)).isoformat(), "what_has_changed": "y" * 500}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


# ------------------------------------------------------------------ (a) bare floor
class StubEngine(PythonScriptEngine):
    def __init__(self):
        super().__init__(environment=ProcessExpressionEnvironment())

    def call_service(self, task, operation_name, operation_params, **kwargs):
        # Every operator's answer at once: the process reads only its own (no outcome met: it ends at closure).
        return json.dumps({"found": False, "recorded_at": now().isoformat(), "deleted": False, "artefact_id": 1,
                           "met": [], "any_met": False, "closed_at": now().isoformat()})


def bare_workflow(engine):
    """A new CAF episode's workflow in memory, over every process in processes/ (the episode calls
    the service-request and contribution processes), run up to its first user task."""
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_files(sorted(str(p) for p in (PROJECT_ROOT / "processes").glob("*.bpmn")))
    wf = BpmnWorkflow(parser.get_spec("caf_episode"), parser.get_subprocess_specs("caf_episode"), script_engine=engine)
    wf.get_next_task(spec_name="Start").set_data(started_at=now().isoformat())
    wf.do_engine_steps()
    return wf


def bare_complete(wf, name, data) -> None:
    """Complete the ready user task `name` as the engine does (form flags and a submission id), then run on."""
    ready = wf.get_tasks(state=TaskState.READY, manual=True)
    task = next((t for t in ready if t.task_spec.name == name), None)
    if task is None:
        raise SystemExit(f"bare workflow: no ready task {name!r} (ready: {sorted(t.task_spec.name for t in ready)})")
    task.set_data(**{name: {**data, "submission": 1}})
    task.run()
    wf.do_engine_steps()


BARE_TO_ACTION_PLAN = [("pre_assessment_checklist", CHECKLIST), ("obtain_consent", CONSENT),
                       ("complete_assessment", {}), ("tac_meeting", {}),
                       ("appoint_lead_professional", {"lead_professional_email": "x"})]


def bare_floor(runs: int) -> float:
    engine = StubEngine()
    wf = bare_workflow(engine)
    for name, data in BARE_TO_ACTION_PLAN:
        bare_complete(wf, name, data)
    saved = SERIALIZER.serialize_json(wf)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        w = SERIALIZER.deserialize_json(saved)
        w.script_engine = engine
        bare_complete(w, "action_plan", {"headline_outcomes": PLAN["headline_outcomes"],
                                         "next_review_date": PLAN["next_review_date"]})
        SERIALIZER.serialize_json(w)
        times.append(time.perf_counter() - t0)
    ready = [t.task_spec.name for t in w.get_tasks(state=TaskState.READY, manual=True)]
    if ready != ["review"]:
        raise SystemExit(f"bare workflow: after the action plan expected a review, found {ready}")
    return statistics.median(times)


# ------------------------------------------------------------------ eCAF set-up
def fresh_runtime(url: str) -> Runtime:
    """An empty database (a new SQLite file, or a scratch PostgreSQL database) migrated and seeded
    (a scratch database: the development audit key)."""
    return small_world(url)[0]


def new_child(runtime) -> int:
    with runtime.db.session() as session:
        number = session.scalar(select(func.count()).select_from(Child))
        child = Child(given_names="Bench", family_name=f"Child-{number}", date_of_birth=date(2015, 1, 1),
                      home_authority_id=1, created_at=now())
        session.add(child)
        session.flush()
        return child.id


def complete(runtime, episode_id, name, data):
    """Complete the episode's ready task `name` as its assignee; the seconds the step took.
    Stops the benchmark if the task is not ready or the step fails: a figure for a step that did
    not happen would mean nothing."""
    with runtime.db.session() as session:
        ready = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                        HumanTask.status == "ready")).all()
    task = next((t for t in ready if t.name == name), None)
    if task is None:
        raise SystemExit(f"episode {episode_id} has no ready task {name!r} (ready: {sorted(t.name for t in ready)})")
    t0 = time.perf_counter()
    result = runtime.engine.complete_task(episode_id, task.id, data, task.assigned_user_id or 1)
    elapsed = time.perf_counter() - t0
    if result.status == "error":
        raise SystemExit(f"episode {episode_id}: completing {name!r} failed: {result.error}")
    return elapsed


def to_action_plan(runtime) -> int:
    episode_id = runtime.engine.start_episode(child_id=new_child(runtime), originator_id=1).episode_id
    for name, data in [("pre_assessment_checklist", CHECKLIST), ("obtain_consent", CONSENT),
                       ("complete_assessment", ASSESSMENT), ("tac_meeting", {"meeting_date": TODAY.isoformat()}),
                       ("appoint_lead_professional", {"lead_professional_email": "u2@bench.test"})]:
        complete(runtime, episode_id, name, data)
    return episode_id


def stored_bytes(runtime, episode_id) -> tuple[int, int]:
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        state = len(episode.state.encode())
        rows = sum(len(json.dumps(a.data)) for a in session.scalars(
            select(Artefact).where(Artefact.episode_id == episode_id)))
        rows += sum(len(json.dumps(t.submitted_data or {})) + len(json.dumps(t.draft or {})) for t in session.scalars(
            select(HumanTask).where(HumanTask.episode_id == episode_id)))
    return state, rows


def engine_step(runtime, steps: int) -> list[float]:
    episodes = [to_action_plan(runtime) for _ in range(steps)]
    return [complete(runtime, e, "action_plan", PLAN) for e in episodes]


def backends(server: str):
    """(name, URL) of each database measured: a new SQLite file, then a scratch PostgreSQL database
    on `server` (dropped once its figures are printed), unless `server` is empty or unreachable."""
    yield "sqlite", f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    if not server:
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database("engine", server))
        except OperationalError as exc:
            print(f"    PostgreSQL not reachable ({type(exc).__name__}): its figures are skipped")
            return
        yield "postgresql", url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--floor-runs", type=int, default=200)
    parser.add_argument("--postgres", default=SERVER,
                        help="the PostgreSQL server for a scratch database of this run; empty: SQLite only")
    args = parser.parse_args()

    floor = bare_floor(args.floor_runs)
    print(f"(a) bare SpiffWorkflow step (deserialize, complete action plan, run, serialize): median {ms(floor)}")
    with closing(backends(args.postgres)) as measured:  # closing: the scratch database is dropped on failure too
        for name, url in measured:
            runtime = fresh_runtime(url)
            times = engine_step(runtime, args.steps)
            median = statistics.median(times)
            print(f"(b) eCAF engine step on {name}: median {ms(median)}, p95 {ms(pct(times, 95))} "
                  f"over {len(times)} steps; {median / floor:.1f}x the bare floor")
            with runtime.db.session() as session:
                delivering = session.scalar(select(Episode.id).where(Episode.stage == "delivery").limit(1))
            state, rows = stored_bytes(runtime, delivering)
            print(f"(c) stored per episode in delivery on {name}: workflow state {state} B, "
                  f"artefacts and forms {rows} B")
            runtime.db.dispose()


if __name__ == "__main__":
    main()
