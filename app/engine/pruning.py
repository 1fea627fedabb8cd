"""Keeping an episode's workflow state the size of its process, not of its history.

SpiffWorkflow keeps every task instance it ever made: each review cycle adds the loop's tasks again,
and each settled service request or contribution keeps its called process. Every step loads and
saves all of it, so the state and the step's cost would grow for as long as an episode lives.
Before each save `prune` drops what the running process can no longer reach. What was done is
recorded elsewhere: submissions and completed human_task rows, artefacts, request and contribution
rows, and the audit trail.

Within the workflow and each of its subprocesses it keeps
- every task not settled (ready, waiting, started, failed, predicted) and the parent of each,
  whose data it inherits, whose state a join reads and to which a reset goes back;
- for a waiting or predicted join that pairs with a split (a boundary event's), the tasks up to
  that split and the split's children, which the join looks for and reads;
- every instance of a running loop or multi-instance activity (it finds them by id);
- the root and the last task run (a subprocess hands the last task's data back when it ends);
- of each step that has finished, its latest instance (a completed one rather than a cancelled
  one), so the steps done stay visible to the diagram and to migration's check of what has run;
- of a parallel or inclusive join, for each incoming branch, the latest completed and the latest
  cancelled instance that branch left, with its parent. A waiting join counts a branch as arrived
  when it finds a finished instance of itself, not its ancestor, whose parent is that branch's
  last step, and on firing merges in those parents' data: when a second branch arrives the first
  one's waiting instance is cancelled, and only that instance still says the first has arrived.
  A cancelled instance is never an ancestor, so one per branch stands for all (SpiffWorkflow counts
  an earlier round's arrivals too, unpruned as pruned). The latest data per branch holds what the
  earlier rounds passed on; only a list merged from every round in turn (SpiffWorkflow's list merge
  trims to each) may come out otherwise.
Older instances of finished steps (earlier loop iterations, earlier requests, cancelled boundary
events) go; the tasks kept are linked to their nearest kept ancestor, so every task keeps its
ancestors among the kept ones, and a kept task's data is unchanged (each task holds all of its
data in memory; the serializer stores it against the new parent). A finished called process
(a call activity's subprocess) goes whole, as does any subprocess whose task went.
"""
from __future__ import annotations

from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

# Finished for good. A failed task (ERROR, which SpiffWorkflow counts as finished) waits for a retry.
SETTLED = TaskState.COMPLETED | TaskState.CANCELLED


def prune(workflow: BpmnWorkflow) -> None:
    """Drop, in place, the finished history the running workflow no longer reaches."""
    parts = [workflow, *sorted(workflow.subprocesses.values(), key=lambda sp: sp.depth)]
    kept = {id(part): _kept(part) for part in parts}
    for sp_id in _subprocesses_to_drop(workflow, kept):
        for task in workflow.subprocesses.pop(sp_id).tasks.values():
            workflow.event_manager.remove_task(task)
    for part in [workflow, *workflow.subprocesses.values()]:
        _splice(workflow, part, kept[id(part)])


def _kept(part) -> set[UUID]:
    """The ids of the tasks of one workflow or subprocess that stay."""
    keep = {part.task_tree.id}
    if part.last_task is not None:
        keep.add(part.last_task.id)
    latest = {}  # step -> (rank, task) of its latest finished instance
    arrivals = {}  # (join, branch's step, state) -> (rank, task) of the latest finished instance of the join
    for order, task in enumerate(part.tasks.values()):
        if not task.has_state(SETTLED):
            keep.add(task.id)
            if task._parent is not None:
                keep.add(task._parent)
            if isinstance(task.task_spec, LoopTask):  # a running loop or multi-instance finds its instances by id
                keep.update(task._children)
            _keep_path_to_split(task, keep)
            continue
        rank = (task.state == TaskState.COMPLETED, task.last_state_change, order)
        name = task.task_spec.name
        if name not in latest or rank > latest[name][0]:
            latest[name] = (rank, task)
        if isinstance(task.task_spec, UnstructuredJoin) and task.parent is not None:
            arrival = (name, task.parent.task_spec.name, task.state)
            if arrival not in arrivals or rank > arrivals[arrival][0]:
                arrivals[arrival] = (rank, task)
    keep.update(task.id for _rank, task in latest.values())
    for _rank, task in arrivals.values():  # the parent is what the join checks and whose data it merges
        keep.update((task.id, task._parent))
    return keep


def _keep_path_to_split(task, keep: set[UUID]) -> None:
    """A join paired with a split (BoundaryEventJoin, StartEventJoin) finds the split among its
    ancestors and reads the split's children: keep the way up to it, and its children."""
    split = getattr(task.task_spec, "split_task", None)
    if not split:
        return
    ancestor = task.parent
    while ancestor is not None:
        keep.add(ancestor.id)
        if ancestor.task_spec.name == split:
            keep.update(ancestor._children)
            return
        ancestor = ancestor.parent


def _subprocesses_to_drop(workflow: BpmnWorkflow, kept: dict[int, set[UUID]]) -> list[UUID]:
    """Finished called processes, and every subprocess whose task (or whose parent subprocess) goes."""
    owner = {task_id: part for part in [workflow, *workflow.subprocesses.values()] for task_id in part.tasks}
    dropped: set[UUID] = set()
    for sp_id, sp in sorted(workflow.subprocesses.items(), key=lambda item: item[1].depth):
        part = owner.get(sp_id)
        task = part.tasks.get(sp_id) if part is not None else None
        if (task is None or sp_id not in kept[id(part)] or getattr(part, "parent_task_id", None) in dropped
                or (isinstance(task.task_spec, CallActivity) and task.has_state(SETTLED))):
            dropped.add(sp_id)
    return [sp_id for sp_id in workflow.subprocesses if sp_id in dropped]


def _splice(workflow: BpmnWorkflow, part, keep: set[UUID]) -> None:
    """Remove the tasks not kept, linking each kept task to its nearest kept ancestor (children in
    their depth-first order, as before). Iterative: an old state's chains run thousands deep."""
    if len(keep) == len(part.tasks):
        return
    root = part.task_tree
    children: dict[UUID, list[UUID]] = {root.id: []}
    stack = [(child, root.id) for child in reversed(root.children)]
    while stack:
        task, nearest = stack.pop()
        if task.id in keep:
            children[nearest].append(task.id)
            children[task.id] = []
            task._parent = nearest
            nearest = task.id
        stack.extend((child, nearest) for child in reversed(task.children))
    for task_id in [t for t in part.tasks if t not in children]:
        workflow.event_manager.remove_task(part.tasks.pop(task_id))
    for task_id, task in part.tasks.items():
        task._children = children[task_id]
