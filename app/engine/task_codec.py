"""A workflow's tasks to and from the dictionaries of SpiffWorkflow's serializer (version 1.5), written
out for speed.

Every step loads and saves its episode's state; SpiffWorkflow's generic converters walk each
task through the type registry, parse each task id three times and look each task's parent up
four times, which came to a third of the CPU of a deadline's step. These functions write and read
exactly the same dictionaries as `TaskConverter`, `WorkflowConverter` and
`BpmnSubWorkflowConverter` (tests/test_task_codec.py compares them on real episodes); anything
that is not a plain `Task` or `BpmnSubWorkflow` goes through the registry as before.
"""
from __future__ import annotations

from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.task import Task, TaskState
from SpiffWorkflow.util.deep_merge import DeepMerge

_updated, _deleted, _merge = DeepMerge.get_updated_keys, DeepMerge.get_deleted_keys, DeepMerge.merge
_PLAIN = frozenset((str, int, float, bool, type(None)))


class TaskCodec:
    def __init__(self, registry):
        self.registry = registry
        self.task_typename = registry.typenames[Task]
        self.subworkflow_typename = registry.typenames[BpmnSubWorkflow]

    # ------------------------------------------------------------------ writing
    def tasks_to_dict(self, workflow) -> dict:
        """As `mapping_to_dict(workflow.tasks)`: only what changed from its parent is kept of a task's data."""
        tasks, convert, typename = workflow.tasks, self.registry.convert, self.task_typename
        written = {}
        for task_id, task in tasks.items():
            key = str(task_id)
            if type(task) is not Task:
                written[key] = convert(task)
                continue
            parent = tasks.get(task._parent) if task._parent is not None else None
            if parent is None:
                data, delta = task.data, {}
            else:
                data = {}
                delta = {"updates": _updated(parent.data, task.data), "deletions": _deleted(parent.data, task.data)}
            written[key] = {
                "id": key,
                "parent": str(task._parent) if parent is not None else None,
                "children": [str(child) for child in task._children],
                "last_state_change": task.last_state_change,
                "state": task._state,
                "task_spec": task.task_spec.name,
                "triggered": task.triggered,
                "internal_data": convert(task.internal_data) if task.internal_data else {},
                "data": data,
                "delta": delta,
                "typename": typename,
            }
        return written

    def workflow_to_dict(self, workflow) -> dict:
        """As `WorkflowConverter.to_dict` (the attributes a workflow and a subprocess share)."""
        registry = self.registry
        return {
            "data": registry.convert(registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": self.tasks_to_dict(workflow),
            "root": str(workflow.task_tree.id),
        }

    def subprocesses_to_dict(self, subprocesses: dict) -> dict:
        written = {}
        for task_id, subprocess in subprocesses.items():
            if type(subprocess) is not BpmnSubWorkflow:
                written[str(task_id)] = self.registry.convert(subprocess)
                continue
            dct = self.workflow_to_dict(subprocess)
            dct["parent_task_id"] = str(subprocess.parent_task_id)
            dct["spec"] = subprocess.spec.name
            dct["typename"] = self.subworkflow_typename
            written[str(task_id)] = dct
        return written

    # ------------------------------------------------------------------ reading
    def restore(self, value):
        """As `registry.restore(value)` for values read from JSON: a plain value costs no call of its own,
        a dictionary with a `typename` (a registered type) goes to the registry."""
        kind = type(value)
        if kind is dict:
            if "typename" in value:
                return self.registry.restore(value)
            restore = self.restore
            return {key: item if type(item) in _PLAIN else restore(item) for key, item in value.items()}
        if kind is list:
            restore = self.restore
            return [item if type(item) in _PLAIN else restore(item) for item in value]
        return value if kind in _PLAIN else self.registry.restore(value)

    def tasks_from_dict(self, mapping: dict, workflow) -> dict:
        """As `mapping_from_dict(mapping, UUID, workflow=workflow)`. Each id is parsed once; parents come
        before their children in the mapping (they were created first), as the library relies on too."""
        ids = {key: UUID(key) for key in mapping}
        specs, restore, typename = workflow.spec.task_specs, self.restore, self.task_typename
        restored, by_key = {}, {}
        for key, dct in mapping.items():
            task_id = ids[key]
            if dct.get("typename") != typename or dct["id"] != key:
                restored[task_id] = by_key[key] = self.registry.restore(dct, workflow=workflow)
                continue
            task_spec = specs.get(dct["task_spec"])
            task = Task(workflow, task_spec, state=dct["state"], id=task_id)
            parent_key = dct["parent"]
            task._parent = (ids.get(parent_key) or UUID(parent_key)) if parent_key is not None else None
            task._children = [ids.get(child) or UUID(child) for child in dct["children"]]
            task.last_state_change = dct["last_state_change"]
            task.triggered = dct["triggered"]
            task.internal_data = restore(dct["internal_data"]) if dct["internal_data"] else {}
            if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
                task.workflow.top_workflow.event_manager.add_task(task)
            delta = dct.get("delta")
            parent = (by_key.get(parent_key) or workflow.tasks.get(task._parent)) if parent_key is not None else None
            if delta and parent is not None:
                data = _merge({}, parent.data)
                data.update(restore(delta.get("updates", {})))
                for name in delta.get("deletions", {}):
                    if name in data:
                        del data[name]
            else:
                data = restore(dct["data"])
            task.data = data
            restored[task_id] = by_key[key] = task
        return restored

    def subprocess_from_dict(self, dct: dict, task, top_workflow):
        """As `BpmnSubWorkflowConverter.from_dict`, with the tasks read by `tasks_from_dict`."""
        if dct.get("typename") != self.subworkflow_typename:
            return self.registry.restore(dct, task=task, top_workflow=top_workflow)
        spec = top_workflow.subprocess_specs.get(task.task_spec.spec)
        subprocess = BpmnSubWorkflow(spec, task.id, top_workflow, deserializing=True)
        subprocess.tasks = self.tasks_from_dict(dct["tasks"], subprocess)
        subprocess.task_tree = subprocess.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(subprocess, dct)
        return subprocess

    def set_default_attributes(self, workflow, dct: dict) -> None:
        """As `WorkflowConverter.set_default_attributes`."""
        workflow.success = dct["success"]
        workflow.completed = dct.get("completed", False)
        workflow.correlations = dct.pop("correlations", {})
        if isinstance(dct["last_task"], str):
            workflow.last_task = workflow.tasks.get(UUID(dct["last_task"]))
        workflow.data = self.restore(dct.pop("data", {}))

    def subprocesses_from_dict(self, dct: dict, workflow, top_workflow=None) -> None:
        """As `BpmnWorkflowConverter.subprocesses_from_dict`: parents before their children."""
        top_workflow = top_workflow or workflow
        for task in list(workflow.tasks.values()):
            if isinstance(task.task_spec, SubWorkflowTask) and str(task.id) in dct:
                subprocess = self.subprocess_from_dict(dct.pop(str(task.id)), task, top_workflow)
                top_workflow.subprocesses[task.id] = subprocess
                subprocess.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
                self.subprocesses_from_dict(dct, subprocess, top_workflow)
