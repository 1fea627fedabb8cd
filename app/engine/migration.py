"""Moving a running episode to a newer version of its process.

SpiffWorkflow's `migrate_workflow` re-points every task at the newer version's specs and rebuilds
the tasks that are waiting (READY, WAITING). An episode may move only when nothing it has already
done was changed or removed in the newer version, with two exceptions that leave its history
true: labels (names, documentation, lanes, forms of finished steps), and scripts or operator
settings of finished steps that set no variable the earlier ones did not (the episode keeps the
values they set; a 35-day limit stays 35 days for an episode that started under it).

Rebuilding a waiting timer would restart it from now; where its definition did not change, the
original due time is put back, so migrating never silently moves a deadline.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import WorkflowDiff, filter_tasks, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from app.clock import as_utc, now
from app.models import HumanTask

from .diff import ASPECTS, VersionDiff, step_id
from .forms import form_files
from .lanes import PERSON_LANES
from .projection import due_at, next_timer_at, stage_of, sync_human_tasks
from .scripting import SCRIPT_ENGINE
from .serializer import SERIALIZER_VERSION, dump_state, load_state

DONE = TaskState.COMPLETED | TaskState.STARTED
# Attributes of a step that no longer matter once it has run.
LABELS = {"bpmn_name", "documentation", "description", "lane", "extensions"}
# Attributes that decide what a finished step did: acceptable only if it set nothing new.
CONTENT = {"script", "prescript", "postscript", "operation_name", "operation_params"}
CHANGED = {"outputs": "what follows it", "inputs": "what comes before it", "cond_task_specs": "its conditions",
           "default_task_spec": "its default path", "event_definition": "its event", "typename": "its type"}


@dataclass
class TimerChange:
    name: str
    before: datetime | None
    after: datetime | None
    outcome: str  # kept, restarts, recomputed, new, ends


@dataclass
class MigrationCheck:
    """Whether an episode's workflow can move to the newer version, and what moving does to it."""

    reasons: list[str] = field(default_factory=list)  # why it cannot move; empty when it can
    notes: list[str] = field(default_factory=list)  # finished steps that keep what the older version did
    timers: list[TimerChange] = field(default_factory=list)
    ended_tasks: dict[str, str] = field(default_factory=dict)  # task id -> title: ready now, not after
    new_tasks: dict[str, str] = field(default_factory=dict)  # task id -> title: ready only after

    @property
    def migratable(self) -> bool:
        return not self.reasons


def migrate(workflow, diff: VersionDiff) -> MigrationCheck:
    """Check the workflow against the diff and, when it may move, move it in place.

    A dry run calls this on a workflow loaded for the purpose and throws it away; a migration
    saves it, only when the check says it may move."""
    check = MigrationCheck()
    diffs = _workflow_diffs(workflow, diff, check)
    if check.reasons:
        return check
    for part, workflow_diff in diffs:
        _check_done_steps(part, workflow_diff, diff, check)
    if check.reasons:
        return check
    timers_before = _waiting_timers(workflow)
    ready_before = _ready_user_tasks(workflow)
    _apply(workflow, diffs, diff)
    stale = [t for part, _ in diffs for t in part.tasks.values() if not _current(part, t)]
    if stale:  # what SpiffWorkflow could not place would not load again: never save it
        check.reasons.append(f"its step '{_title(stale[0])}' has no place in {diff.new.label}")
        return check
    check.timers = _restore_timers(workflow, timers_before)
    ready_after = _ready_user_tasks(workflow)
    check.ended_tasks = {k: v for k, v in ready_before.items() if k not in ready_after}
    check.new_tasks = {k: v for k, v in ready_after.items() if k not in ready_before}
    return check


def _workflow_diffs(workflow, diff: VersionDiff, check: MigrationCheck) -> list:
    """(workflow or subworkflow, WorkflowDiff) for the episode and each subprocess it has entered."""
    found = []
    failed = [t for t in _every_task(workflow) if t.state == TaskState.ERROR]
    if failed:
        check.reasons.append(f"'{_title(failed[0])}' failed: retry or repair it before migrating")
        return found
    parts = [workflow, *workflow.subprocesses.values()]
    for part in parts:
        spec_diff = diff.spec_diffs.get(part.spec.name)
        if spec_diff is None:
            check.reasons.append(f"its subprocess '{part.spec.name}' is missing from {diff.new.label}")
            continue
        try:
            found.append((part, WorkflowDiff(part, spec_diff)))
        except KeyError as exc:  # a task whose spec the diff could not place
            check.reasons.append(f"its step '{exc.args[0]}' could not be matched to {diff.new.label}")
    return found


def _check_done_steps(part, workflow_diff: WorkflowDiff, diff: VersionDiff, check: MigrationCheck) -> None:
    spec_diff = diff.spec_diffs[part.spec.name]
    seen = set()
    for task in filter_tasks(workflow_diff.removed, state=DONE):
        if task.task_spec.name not in seen:
            seen.add(task.task_spec.name)
            check.reasons.append(f"'{_title(task)}' has already {_ran(task)}, and it is not in {diff.new.label}")
    for task in filter_tasks(workflow_diff.removed, state=TaskState.READY | TaskState.WAITING):
        if task.task_spec.name not in seen:  # the episode stands on a step that no longer exists
            seen.add(task.task_spec.name)
            check.reasons.append(f"it is waiting at '{_title(task)}', which is not in {diff.new.label}")
    for task in filter_tasks(workflow_diff.changed, state=DONE):
        if task.task_spec.name in seen:
            continue
        seen.add(task.task_spec.name)
        old, new = task.task_spec, spec_diff.alignment[task.task_spec]
        attributes = set(spec_diff.comparisons[old]) - LABELS
        structural = attributes - CONTENT
        if structural:
            aspects = sorted({"its boundary events" if not old.bpmn_id else CHANGED.get(a, f"its {ASPECTS.get(a, a)}")
                              for a in structural})
            check.reasons.append(f"'{_title(task)}' has already {_ran(task)}, and {' and '.join(aspects)} "
                                 f"changed in {diff.new.label}")
            continue
        if not attributes:
            continue
        added = _names_set_by(new) - _names_set_by(old)
        if "operation_name" in attributes or added:
            what = f"now sets {', '.join(sorted(added))}, which this episode does not have" if added \
                else "now calls another operator"
            check.reasons.append(f"'{_title(task)}' has already {_ran(task)}, and {what}")
        else:
            kept = sorted(_names_set_by(old))
            check.notes.append(f"'{_title(task)}' ran under {diff.old.label}: this episode keeps what it set"
                               + (f" ({', '.join(kept)})" if kept else ""))


def _names_set_by(spec) -> set[str]:
    """Task-data variables a step's scripts and service result write."""
    names: set[str] = set()
    for attribute in ("prescript", "script", "postscript"):
        source = getattr(spec, attribute, None)
        if source:
            names |= _assigned(source)
    result = getattr(spec, "result_variable", None)
    if getattr(spec, "operation_name", None):
        names.add(result or f"spiff__{spec.bpmn_id}_result")
    return names


class _Assignments(ast.NodeVisitor):
    """Names a script binds at its top level (function bodies and comprehensions have their own)."""

    def __init__(self):
        self.names: set[str] = set()

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.names.add(node.id)

    def visit_FunctionDef(self, node):
        self.names.add(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node):
        self.names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}

    visit_ImportFrom = visit_Import

    def visit_Lambda(self, node):
        pass

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda


def _assigned(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {"(a script that does not compile)"}
    visitor = _Assignments()
    visitor.visit(tree)
    return visitor.names


def _apply(workflow, diffs: list, diff: VersionDiff) -> None:
    removed = []
    for part, workflow_diff in diffs:
        new_spec = diff.new_spec if part is workflow else diff.new_subprocess_specs[part.spec.name]
        if part is workflow or part.parent_task_id in workflow.subprocesses:
            removed += migrate_workflow(workflow_diff, part, new_spec)
            removed += _drop_removed_steps(part)
    workflow.subprocess_specs = diff.new_subprocess_specs
    for task in removed:  # rebuilt tasks must not stay registered as waiting for events
        workflow.event_manager.remove_task(task)


def _current(part, task) -> bool:
    return part.spec.task_specs.get(task.task_spec.name) is task.task_spec


def _drop_removed_steps(part) -> list:
    """Tasks of steps the newer version no longer has that migrate_workflow leaves behind: ones
    only predicted are predicted again from the new flows; cancelled ones are history that could
    not be loaded again. (Finished, ready and waiting ones were refused by the check.)"""
    dropped = []
    for task in [t for t in part.tasks.values() if not _current(part, t)]:
        if task.id not in part.tasks or not task.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE
                                                           | TaskState.CANCELLED):
            continue  # gone with its parent already, or (never here) a task the check refused
        parent = task.parent
        dropped += list(task)
        part._remove_task(task.id)
        if parent is not None and parent.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE):
            parent.task_spec._predict(parent, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
    return dropped


def _every_task(workflow):
    """Every task of the workflow and its subprocesses: plain dict walks, much cheaper than get_tasks'
    tree iterator when a dry run visits thousands of episodes."""
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def _waiting_timers(workflow) -> dict[UUID, tuple]:
    found = {}
    for task in workflow.event_manager.tasks.values():  # every task waiting for an event
        event = getattr(task.task_spec, "event_definition", None)
        if task.state == TaskState.WAITING and isinstance(event, TimerEventDefinition):
            found[task.id] = (_title(task), type(event), event.expression, task.internal_data.get("event_value"))
    return found


def _restore_timers(workflow, before: dict) -> list[TimerChange]:
    """Put back the due time of every waiting timer whose definition did not change."""
    changes, now_waiting = [], _waiting_timers(workflow)
    for task_id, (title, kind, expression, value) in now_waiting.items():
        task = workflow.get_task_from_id(task_id)
        old = before.get(task_id)
        if old is None:
            changes.append(TimerChange(title, None, _due(value), "new"))
        elif (old[1], old[2]) == (kind, expression):
            if old[3] is not None and old[3] != value:
                task.internal_data["event_value"] = old[3]
                task.internal_data.pop("event_fired", None)
            changes.append(TimerChange(title, _due(old[3]), _due(old[3]), "kept"))
        else:
            outcome = "recomputed" if kind.__name__ == "TimeDateEventDefinition" else "restarts"
            changes.append(TimerChange(title, _due(old[3]), _due(value), outcome))
    for task_id, (title, _kind, _expression, value) in before.items():
        if task_id not in now_waiting:
            changes.append(TimerChange(title, _due(value), None, "ends"))
    return changes


def _due(value) -> datetime | None:
    if isinstance(value, dict):  # a cycle timer: its next firing
        value = value.get("next")
    if not isinstance(value, str):
        return None
    return as_utc(TimerEventDefinition.get_datetime(value))


def _ready_user_tasks(workflow) -> dict[str, str]:
    return {str(t.id): _title(t) for t in _every_task(workflow)
            if t.state == TaskState.READY and t.task_spec.manual}


def _title(task) -> str:
    spec = task.task_spec
    if spec.bpmn_id:
        return spec.bpmn_name or spec.bpmn_id
    step = step_id(spec)
    owner = task.workflow.spec.task_specs.get(step) if step else None
    return (owner.bpmn_name or owner.bpmn_id) if owner is not None else spec.name


def _ran(task) -> str:
    return "started" if task.state == TaskState.STARTED else "run"


# ---------------------------------------------------------------- loading and saving an episode

def load(episode, diff: VersionDiff):
    """The workflow of an episode on the diff's older version (its specs come with the diff, so
    thousands of episodes never fetch the version row again)."""
    if episode.process_version_id != diff.old.id:
        raise ValueError(f"episode {episode.id} is not on {diff.old.label}")
    workflow = load_state(episode.state, episode.serializer_version, diff.old_spec, diff.old_subprocess_specs)
    workflow.script_engine = SCRIPT_ENGINE  # never serialized: set after every load
    return workflow


def save(session, episode, workflow, diff: VersionDiff):
    """Store a moved workflow on its episode: the new version, the state (reloaded first, so a
    state that would not load is never saved), stage, next timer and the projected tasks."""
    state = dump_state(workflow)
    reloaded = load_state(state, SERIALIZER_VERSION, diff.new_spec, diff.new_subprocess_specs)
    reloaded.script_engine = SCRIPT_ENGINE
    episode.process_version_id = diff.new.id
    session.expire(episode, ["process_version"])  # read again from the new id when next used
    episode.state, episode.serializer_version = state, SERIALIZER_VERSION
    episode.stage = stage_of(reloaded)
    episode.next_timer_at = None if reloaded.is_completed() else next_timer_at(reloaded)
    episode.updated_at = now()
    _refresh_ready_rows(session, episode, reloaded)
    sync_human_tasks(session, episode, reloaded, episode.stage)
    return reloaded


def _refresh_ready_rows(session, episode, workflow) -> None:
    """A ready task that stays ready keeps its row (and its draft); its title, lane, form and due
    date now come from the newer version."""
    rows = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id,
                                                   HumanTask.status == "ready")).all()
    for row in rows:
        task = workflow.get_task_from_id(UUID(row.task_id))
        if task is None or task.state != TaskState.READY:
            continue  # sync_human_tasks cancels it
        spec = task.task_spec
        lane = spec.lane
        if lane != row.lane and lane not in PERSON_LANES and row.reassigned_by_id is None:
            row.assigned_user_id = None  # now a role's task, to be claimed
        row.name, row.title, row.lane = spec.bpmn_id or spec.name, spec.bpmn_name or spec.name, lane
        row.form, row.ui_form = form_files(spec)
        row.due_at = due_at(task)
