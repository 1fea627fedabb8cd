"""Expression benchmark: what the process expression language costs against plain Python eval.

    python bench/expressions.py [--runs 300] [--repeats 20]

Runs one CAF episode in memory (handlers stubbed, as in bench/engine.py's bare floor) from the
checklist to the final summary, with a contribution (returned once), a service request (asked for
more information once) and two review cycles, and records every script, gateway
condition, timer and service-task parameter the shipped models (processes/*.bpmn) evaluate on
the way, with the task data each saw. Each recorded evaluation is then replayed RUNS times:
(1) through eCAF's interpreter (app.engine.expression_runtime: the checked tree is cached, as
    in a running service; its limits and the copy of what a script keeps are paid for);
(2) as plain Python, the way SpiffWorkflow's default TaskDataEnvironment runs the same source
    (eval/exec of the text over the task data, compiled each time);
(3) as the floor, eval/exec of code compiled once.
Prints microseconds per evaluation (the fastest of REPEATS rounds) for the `set_deadlines`
script, the gateway conditions, each kind and the whole episode, and the ratios (1)/(2) and (1)/(3).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SpiffWorkflow.bpmn import BpmnEvent  # noqa: E402
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from app.clock import now  # noqa: E402
from app.config import PROJECT_ROOT  # noqa: E402
from app.engine import expression_runtime, process_dates  # noqa: E402
from bench.engine import (BARE_TO_ACTION_PLAN, PLAN, REVIEW, StubEngine, bare_complete,  # noqa: E402
                          bare_workflow)

# The helpers the language offers, as plain Python functions for the Python side.
PYTHON_HELPERS = {"iso_after": process_dates.iso_after, "start_of_day": process_dates.start_of_day,
                  "now_iso": process_dates.now_iso}
CLOSE = {**REVIEW, "outcome": "close"}


@dataclass
class Evaluation:
    kind: str  # script, condition, timer, parameter
    process: str  # the BPMN id of the process and of the element that evaluated it
    element: str
    source: str
    data: dict
    external: dict


def model_sources() -> set[str]:
    """Every script, condition, timer and service-task parameter written in processes/*.bpmn."""
    found = set()
    for path in sorted((PROJECT_ROOT / "processes").glob("*.bpmn")):
        for element in ElementTree.parse(path).iter():
            tag = element.tag.rsplit("}", 1)[-1]
            if tag in ("script", "conditionExpression", "timeDate", "timeDuration", "timeCycle") and element.text:
                found.add(element.text.strip())
            elif tag == "parameter" and element.get("value"):
                found.add(element.get("value").strip())
    return found


def kind_of(task) -> str:
    spec = type(task.task_spec).__name__
    if "Gateway" in spec:
        return "condition"
    if "Service" in spec:
        return "parameter"
    if "Event" in spec:
        return "timer"
    return spec


class RecordingEngine(StubEngine):
    """The bare floor's script engine (eCAF's language, stubbed services), noting what it evaluates."""

    def __init__(self):
        super().__init__()
        self.seen: list[Evaluation] = []

    def evaluate(self, task, expression, external_context=None):
        self.seen.append(Evaluation(kind_of(task), task.workflow.spec.name, task.task_spec.name, expression,
                                    copy.deepcopy(task.data), copy.deepcopy(external_context or {})))
        return super().evaluate(task, expression, external_context)

    def execute(self, task, script, external_context=None):
        self.seen.append(Evaluation("script", task.workflow.spec.name, task.task_spec.name, script,
                                    copy.deepcopy(task.data), copy.deepcopy(external_context or {})))
        return super().execute(task, script, external_context)


    def call_service(self, task, operation_name, operation_params, **kwargs):
        return json.dumps({**json.loads(super().call_service(task, operation_name, operation_params)),
                           "due_at": (now() + timedelta(days=10)).isoformat()})


def message(wf, name: str, payload: dict) -> None:
    wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))
    wf.do_engine_steps()


def one_episode() -> list[Evaluation]:
    """An episode with a contribution (returned once) and a service request (asked for more
    information once) in Assessment, then delivery through two reviews to the final summary."""
    engine = RecordingEngine()
    wf = bare_workflow(engine)
    checklist, consent, *to_action_plan = BARE_TO_ACTION_PLAN
    for name, data in checklist, consent:
        bare_complete(wf, name, data)
    message(wf, "contribution_requested", {"id": 1})
    message(wf, "service_request", {"id": 1})
    for name, data in [("write_contribution", {}), ("review_contribution", {"decision": "return"}),
                       ("write_contribution", {}), ("review_contribution", {"decision": "accept"}),
                       ("request_form", {}), ("team_decision", {"decision": "more_information"}),
                       ("request_form", {}), ("team_decision", {"decision": "accept"}),
                       *to_action_plan, ("action_plan", PLAN), ("review", REVIEW), ("action_plan", PLAN),
                       ("review", CLOSE), ("final_summary", {"closure_reason": "needs_met"})]:
        bare_complete(wf, name, data)
    if not wf.is_completed():
        ready = sorted(t.task_spec.name for t in wf.get_tasks(state=TaskState.READY))
        raise SystemExit(f"the episode did not close (ready: {ready})")
    return [e for e in engine.seen if e.source.strip()]


# ------------------------------------------------------------------ the three ways of running one
def ecaf(e: Evaluation):
    if e.kind == "script":
        return lambda data: expression_runtime.execute(e.source, data, e.external)
    return lambda data: expression_runtime.evaluate(e.source, data, e.external)


def python(e: Evaluation):
    environment = TaskDataEnvironment(PYTHON_HELPERS)
    if e.kind == "script":
        return lambda data: environment.execute(e.source, data, e.external)
    return lambda data: environment.evaluate(e.source, data, e.external)


def compiled(e: Evaluation):
    if e.kind == "script":
        code = compile(e.source, "<script>", "exec")
        scope = {**PYTHON_HELPERS, **e.external}
        return lambda data: exec(code, {**scope, **data})
    code = compile(e.source.strip(), "<expression>", "eval")
    return lambda data: eval(code, {**PYTHON_HELPERS, **e.external, **data})


def same_results(e: Evaluation) -> None:
    """Both languages agree on what the model's source means with this data (else a figure would compare unlike work)."""
    if e.kind == "script":
        ours, theirs = copy.deepcopy(e.data), copy.deepcopy(e.data)
        ecaf(e)(ours), python(e)(theirs)
        ours_again = copy.deepcopy(ours)
        ecaf(e)(ours_again)
        if ours != theirs or ours_again != ours:
            raise SystemExit(f"{e.element}: the script's results differ or it is not repeatable: {e.source!r}")
    elif ecaf(e)(copy.deepcopy(e.data)) != python(e)(copy.deepcopy(e.data)):
        raise SystemExit(f"{e.element}: eCAF and Python disagree on {e.source!r}")


def per_evaluation(e: Evaluation, runs: int, repeats: int) -> list[float]:
    """Seconds per evaluation for each way: the fastest of `repeats` rounds of `runs` evaluations
    over the same data (the shipped scripts only assign what they do not read, so running one again
    is the same work). The ways take turns round by round, so a busy machine slows each alike."""
    ways = [way(e) for way in (ecaf, python, compiled)]
    data = [copy.deepcopy(e.data) for _ in ways]
    best = [float("inf")] * len(ways)
    for _ in range(repeats):
        for i, run in enumerate(ways):
            started = time.perf_counter()
            for _ in range(runs):
                run(data[i])
            best[i] = min(best[i], (time.perf_counter() - started) / runs)
    return best


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    seen = one_episode()
    timings = []  # (evaluation, ecaf, python, compiled), seconds per evaluation
    for e in seen:
        same_results(e)
        timings.append((e, *per_evaluation(e, args.runs, args.repeats)))

    distinct = {e.source.strip() for e in seen}
    print(f"eCAF expression benchmark: one episode (a contribution, a service request, two reviews, closure) "
          f"evaluates {len(seen)} expressions, {len(distinct)} of the {len(model_sources())} written in "
          f"processes/*.bpmn; {args.runs} runs each, best of {args.repeats}; microseconds per evaluation")
    print(f"{'':<44} {'eCAF language':>13} {'Python eval':>13} {'ratio':>6} {'compiled once':>13} {'ratio':>6}")

    def line(label: str, rows: list, *, total: bool = False) -> None:
        if not rows:
            return
        mean = [sum(r[i] for r in rows) / (1 if total else len(rows)) for i in (1, 2, 3)]
        print(f"{label:<44} {us(mean[0]):>13} {us(mean[1]):>13} {mean[0] / mean[1]:5.1f}x "
              f"{us(mean[2]):>13} {mean[0] / mean[2]:5.1f}x")

    line("script set_deadlines", [t for t in timings if t[0].element == "set_deadlines"])
    line("gateway conditions of caf_episode", [t for t in timings
                                               if t[0].kind == "condition" and t[0].process == "caf_episode"])
    by_kind = defaultdict(list)
    for t in timings:
        by_kind[t[0].kind].append(t)
    for kind, rows in sorted(by_kind.items()):
        line(f"every {kind} ({len(rows)} evaluations)", rows)
    line(f"per evaluation, all {len(timings)}", timings)
    line("the whole episode (sum)", timings, total=True)


if __name__ == "__main__":
    main()
