"""Workflow (de)serialization with the spec kept apart from the state.

The spec of a process version is serialized once and parsed objects are cached per version;
an episode row holds only the workflow state. SpiffWorkflow internals stay in this package.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from .task_codec import TaskCodec

_registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
_registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
_registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
SERIALIZER = BpmnWorkflowSerializer(_registry)
SERIALIZER_VERSION = SERIALIZER.VERSION
REGISTRY = SERIALIZER.registry
_ENCODER = SERIALIZER._encoder_cls
_CODEC = TaskCodec(REGISTRY)


def dump_specs(spec, subprocess_specs) -> str:
    """The spec and subprocess specs of a process version, as JSON."""
    return json.dumps({
        "spec": REGISTRY.convert(spec),
        "subprocess_specs": {name: REGISTRY.convert(s) for name, s in subprocess_specs.items()},
    })


def load_specs(spec_json: str):
    doc = json.loads(spec_json)
    spec = REGISTRY.restore(doc["spec"])
    subs = {name: REGISTRY.restore(s) for name, s in doc["subprocess_specs"].items()}
    return spec, subs


def dump_state(workflow: BpmnWorkflow) -> str:
    """The workflow's state without its spec (the spec lives on the process version)."""
    REGISTRY._encoder_mode = True
    try:
        dct = _CODEC.workflow_to_dict(workflow)
        dct["subprocesses"] = _CODEC.subprocesses_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = REGISTRY.convert(workflow.bpmn_events)
        return json.dumps(dct, cls=_ENCODER, separators=(",", ":"))
    finally:
        REGISTRY._encoder_mode = False


class StateVersionRefused(ValueError):
    """A state written by another serializer version: SpiffWorkflow's migrations of old states
    evaluate timer expressions with Python's eval, so such a state is never read."""


def load_state(state_json: str, serializer_version: str, spec, subprocess_specs) -> BpmnWorkflow:
    """Rebuild a workflow from its stored state and the (cached, shared) specs of its version."""
    if serializer_version != SERIALIZER_VERSION:
        raise StateVersionRefused(f"the workflow state was written by serializer version {serializer_version}; "
                                  f"eCAF reads only version {SERIALIZER_VERSION}")
    dct = json.loads(state_json)
    workflow = BpmnWorkflow(spec, subprocess_specs, deserializing=True)
    workflow.tasks = _CODEC.tasks_from_dict(dct["tasks"], workflow)
    workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
    _CODEC.set_default_attributes(workflow, dct)
    _CODEC.subprocesses_from_dict(dct["subprocesses"], workflow)
    workflow.bpmn_events = REGISTRY.restore(dct.get("bpmn_events", []))
    return workflow
