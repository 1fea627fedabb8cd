"""The written-out task codec (app/engine/task_codec.py) reads and writes exactly what SpiffWorkflow's
own converters do: every state an episode passes through on its way (deadlines fired, a review
cycle, a service request, a child-protection escalation) is written byte for byte the same, and
read back into the same tasks, data and waiting events."""
from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID

import pytest
import time_machine
from SpiffWorkflow.bpmn.serializer.default.workflow import WorkflowConverter
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from app.clock import now
from app.engine import runner, serializer
from app.engine.errors import FormInvalid
from app.jobs.timers import fire_due_timers
from app.models import Child, Episode
from app.services.service_requests import decide

from .conftest import complete
from .journeys import prepare, to_review, today
from .test_service_requests import send, teams, user  # noqa: F401,F811 (teams is a fixture)

REGISTRY = serializer.REGISTRY
LIBRARY = REGISTRY.convert_to_dict[REGISTRY.typenames[BpmnWorkflow]].args[1].__self__


def library_dump(workflow: BpmnWorkflow) -> str:
    """dump_state as SpiffWorkflow's own converters write it."""
    REGISTRY._encoder_mode = True
    try:
        dct = WorkflowConverter.to_dict(LIBRARY, workflow)
        dct["subprocesses"] = LIBRARY.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = REGISTRY.convert(workflow.bpmn_events)
        return json.dumps(dct, cls=serializer._ENCODER, separators=(",", ":"))
    finally:
        REGISTRY._encoder_mode = False


def library_load(state: str, spec, subprocess_specs) -> BpmnWorkflow:
    dct = json.loads(state)
    workflow = BpmnWorkflow(spec, subprocess_specs, deserializing=True)
    workflow.tasks = LIBRARY.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
    workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
    LIBRARY.set_default_attributes(workflow, dct)
    LIBRARY.subprocesses_from_dict(dct["subprocesses"], workflow)
    workflow.bpmn_events = REGISTRY.restore(dct.get("bpmn_events", []))
    return workflow


def described(workflow: BpmnWorkflow) -> list:
    """What a loaded workflow holds, task by task, subprocesses included."""
    parts = [workflow, *workflow.subprocesses.values()]
    return [(type(part).__name__, part.success, part.completed, part.data, part.correlations,
             part.last_task.id if part.last_task else None, part.task_tree.id,
             [(type(t).__name__, t.id, t._parent, t._children, t.state, t.task_spec.name, t.triggered, t.data,
               t.internal_data, t.last_state_change, t.thread_id) for t in part.tasks.values()])
            for part in parts] + [[str(k) for k in workflow.event_manager.tasks],  # in the order events reach them
                                  [str(k) for k in workflow.subprocesses]]


class Compared:
    """Stands in for the runner's load_state and dump_state and compares each call with the library's."""

    def __init__(self):
        self.saves = self.loads = 0

    def dump_state(self, workflow):
        written = serializer.dump_state(workflow)
        assert written == library_dump(workflow)
        self.saves += 1
        return written

    def load_state(self, state, version, spec, subprocess_specs):
        loaded = serializer.load_state(state, version, spec, subprocess_specs)
        reference = library_load(state, spec, subprocess_specs)
        assert described(loaded) == described(reference)
        assert serializer.dump_state(loaded) == library_dump(reference)
        assert json.loads(serializer.dump_state(loaded)) == json.loads(state)  # subprocesses may come in another order
        self.loads += 1
        return loaded


def another_child(runtime, people, name: str) -> dict:
    with runtime.db.session() as session:
        child = Child(given_names=name, family_name="Child", home_authority_id=people["authority"], created_at=now())
        session.add(child)
        session.flush()
        return {**people, "child": child.id}


def test_every_state_of_an_episode_is_written_and_read_as_spiffworkflow_would(runtime, people, teams,  # noqa: F811
                                                                              monkeypatch):
    compared = Compared()
    monkeypatch.setattr(runner, "dump_state", compared.dump_state)
    monkeypatch.setattr(runner, "load_state", compared.load_state)

    late = prepare(runtime, people)  # its assessment deadline passes and fires
    with time_machine.travel(now() + timedelta(days=36), tick=False):
        assert fire_due_timers(runtime).woken == 1
    urgent = prepare(runtime, another_child(runtime, people, "Sam"), concern=True)  # a child-protection case escalated after 48 hours
    with time_machine.travel(now() + timedelta(hours=49), tick=False):
        fire_due_timers(runtime)
    with pytest.raises(FormInvalid):  # a form refused: loaded, nothing saved
        complete(runtime, urgent, "complete_assessment", {})

    episode_id = to_review(runtime, another_child(runtime, people, "Alex"))
    request_id = send(runtime, people, teams, episode_id)
    assert not decide(runtime, request_id, user(runtime, teams["eve"]), {"decision": "accept"}).errors
    complete(runtime, episode_id, "review", {"review_date": today().isoformat(), "outcome": "continue",
                                             "next_review_date": (today() + timedelta(days=42)).isoformat()})
    with runtime.db.session() as session:
        for episode in session.query(Episode).filter(Episode.id.in_([late, urgent, episode_id])):
            runner.Engine._load(runtime.engine, episode)
    assert compared.saves > 10 and compared.loads > 10


def test_task_data_is_restored_as_the_registry_would_with_registered_types_inside():
    from datetime import date
    from decimal import Decimal

    data = {"plain": [1, 2.5, "x", None, True, {"nested": []}],
            "when": date(2026, 12, 3), "amount": Decimal("12.50"), "deep": {"list": [{"on": date(2027, 1, 1)}]}}
    written = json.loads(json.dumps(REGISTRY.convert(data)))
    assert serializer._CODEC.restore(written) == REGISTRY.restore(json.loads(json.dumps(written))) == data
