"""What changed between two versions of a process: steps added, removed and changed, and what
changed in each (its script, timer, form, flows, lane...).

SpiffWorkflow's SpecDiff compares the task specs of each process and subprocess; forms are not
part of a spec, so their files are compared here too. One VersionDiff is computed per pair of
versions and kept: versions never change, and a migration checks every episode against it.
"""
from __future__ import annotations

import difflib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import SpecDiff

from app.models import ProcessVersion

from .forms import form_files
from .library import SPECS
from .serializer import REGISTRY

INTERNAL_SUFFIXES = (".BoundaryEventSplit", ".BoundaryEventJoin")
TIMER_KINDS = {"TimeDateEventDefinition": "date", "DurationTimerEventDefinition": "duration",
               "CycleTimerEventDefinition": "cycle"}
# How each changed attribute of a task spec is named for people, in the order they are listed.
ASPECTS = {
    "typename": "type", "manual": "type", "description": "type",
    "bpmn_name": "name", "documentation": "documentation", "lane": "lane",
    "script": "script", "prescript": "script", "postscript": "script",
    "event_definition": "event", "cancel_activity": "interrupting",
    "operation_name": "operator", "operation_params": "operator", "result_variable": "operator",
    "cond_task_specs": "conditions", "default_task_spec": "conditions",
    "inputs": "flow", "outputs": "flow", "extensions": "extensions", "spec": "subprocess",
    "name": "id", "bpmn_id": "id",
}


@dataclass(frozen=True)
class StepChange:
    """One step (BPMN element) added, removed or changed; `what` names the aspects that changed."""

    kind: str  # added, removed, changed
    bpmn_id: str
    name: str | None
    process: str  # the process or subprocess the step belongs to
    what: tuple[str, ...] = ()
    details: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} ({self.bpmn_id})" if self.name else self.bpmn_id


@dataclass(frozen=True)
class VersionRef:
    """Enough of a process version to name it: a diff outlives the session that loaded the version."""

    id: int
    process_id: str
    number: int

    @property
    def label(self) -> str:
        return f"{self.process_id} v{self.number}"

    @classmethod
    def of(cls, version: ProcessVersion) -> "VersionRef":
        return cls(version.id, version.process_id, version.version)


@dataclass
class VersionDiff:
    old: VersionRef
    new: VersionRef
    changes: list[StepChange]
    spec_diffs: dict  # spec name -> SpecDiff, or None for a (sub)process the new version lacks
    old_spec: object
    old_subprocess_specs: dict
    new_spec: object
    new_subprocess_specs: dict
    added_processes: list[str] = field(default_factory=list)
    removed_processes: list[str] = field(default_factory=list)
    changed_forms: set[str] = field(default_factory=set)  # BPMN ids of user tasks whose form content changed

    def of_kind(self, kind: str) -> list[StepChange]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def markers(self) -> dict[str, list[str]]:
        """BPMN ids to mark on the newer version's diagram."""
        return {kind: sorted({c.bpmn_id for c in self.changes if c.kind == kind}) for kind in ("added", "changed")}

    @property
    def is_empty(self) -> bool:
        return not (self.changes or self.added_processes or self.removed_processes)


def step_id(spec) -> str | None:
    """The BPMN element a task spec stands for; boundary-event plumbing belongs to its task."""
    if spec.bpmn_id:
        return spec.bpmn_id
    for suffix in INTERNAL_SUFFIXES:
        if spec.name.endswith(suffix):
            return spec.name[: -len(suffix)]
    return None  # Start, End and joins SpiffWorkflow adds to every process


def _names(specs, ids: bool = False) -> str:
    shown = [(s.bpmn_id if ids else s.bpmn_name or s.bpmn_id) for s in specs if s.bpmn_id]
    return ", ".join(shown) or "nothing"


def _timer(event) -> str:
    if isinstance(event, TimerEventDefinition):
        return f"{TIMER_KINDS.get(type(event).__name__, 'timer')} {event.expression}"
    return type(event).__name__.replace("EventDefinition", " event").lower() if event is not None else "none"


def _script_lines(old: str | None, new: str | None) -> list[str]:
    diff = difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _describe(old, new, attributes: list[str]) -> tuple[list[str], list[str]]:
    """People's words for what changed between two aligned task specs."""
    what, details = [], []

    def note(aspect: str, detail: str | None = None) -> None:
        if aspect not in what:
            what.append(aspect)
        if detail and detail not in details:
            details.append(detail)

    for attribute in attributes:
        aspect = ASPECTS.get(attribute, attribute)
        if aspect == "type":
            note("type", f"type: {type(old).__name__} → {type(new).__name__}")
        elif aspect == "name":
            note("name", f"name: {old.bpmn_name or '(none)'} → {new.bpmn_name or '(none)'}")
        elif aspect == "id":
            note("id", f"id: {old.bpmn_id or old.name} → {new.bpmn_id or new.name}")
        elif aspect == "lane":
            note("lane", f"lane: {old.lane or '(none)'} → {new.lane or '(none)'}")
        elif aspect == "script":
            for line in _script_lines(getattr(old, attribute, None), getattr(new, attribute, None)):
                note("script", f"script, {'was' if line[0] == '-' else 'now'}: {line[1:]}")
            note("script")
        elif aspect == "event":
            before, after = getattr(old, "event_definition", None), getattr(new, "event_definition", None)
            timer = isinstance(before, TimerEventDefinition) or isinstance(after, TimerEventDefinition)
            if timer and _timer(before) == _timer(after):
                continue  # only the timer's label followed a renamed step
            note("timer" if timer else "event", f"{'timer' if timer else 'event'}: {_timer(before)} → {_timer(after)}")
        elif aspect == "operator":
            was, now = getattr(old, "operation_name", None), getattr(new, "operation_name", None)
            note("operator", f"operator: {was} → {now}" if attribute == "operation_name"
                 else f"operator {attribute.replace('_', ' ')} changed")
        elif aspect == "flow":
            direction = "comes after" if attribute == "inputs" else "leads to"
            before, after = getattr(old, attribute), getattr(new, attribute)
            ids = _names(after) == _names(before)  # same names: only the ids tell them apart
            note("flow", f"{direction}: {_names(after, ids)} (was: {_names(before, ids)})")
        elif aspect == "extensions":
            _describe_extensions(old, new, note)
        elif aspect == "interrupting":
            note("interrupting", f"interrupting: {'yes' if old.cancel_activity else 'no'} → "
                                 f"{'yes' if new.cancel_activity else 'no'}")
        else:
            note(aspect)
    return what, details


def _describe_extensions(old, new, note) -> None:
    before, after = old.extensions or {}, new.extensions or {}
    for label, was, now in zip(("form", "UI form"), form_files(old), form_files(new)):
        if was != now:
            note("form", f"{label} file: {was or '(none)'} → {now or '(none)'}")
    if before.get("instructionsForEndUser") != after.get("instructionsForEndUser"):
        note("instructions")
    others = {k for k in set(before) | set(after) if k not in ("instructionsForEndUser", "properties")
              and before.get(k) != after.get(k)}
    if _without_forms(before.get("properties")) != _without_forms(after.get("properties")):
        others.add("properties")
    if others:
        note("extensions", "extensions: " + ", ".join(sorted(others)))


def _without_forms(properties: dict | None) -> dict:
    return {k: v for k, v in (properties or {}).items()
            if k not in ("formJsonSchemaFilename", "formUiSchemaFilename")}


def _form_changed(old_spec, new_spec, old_forms: dict, new_forms: dict) -> list[str]:
    """Form files (schema, UI schema) whose content differs between the versions."""
    changed = []
    for before, after in zip(form_files(old_spec), form_files(new_spec)):
        if before and after and old_forms.get(before) != new_forms.get(after):
            changed.append(after)
    return changed


def _changes_in(process: str, spec_diff: SpecDiff, old, new) -> tuple[list[StepChange], set[str]]:
    """The steps of one process that changed, including user tasks whose form file changed."""
    found: OrderedDict[tuple[str, str], StepChange] = OrderedDict()
    changed_forms: set[str] = set()

    def add(change: StepChange) -> None:
        key = (change.kind, change.bpmn_id)
        if key in found:  # a task and its boundary-event plumbing are one step
            merged = found[key]
            change = StepChange(change.kind, change.bpmn_id, merged.name or change.name, process,
                                tuple(dict.fromkeys(merged.what + change.what)),
                                tuple(dict.fromkeys(merged.details + change.details)))
        found[key] = change

    for old_spec, new_spec in spec_diff.alignment.items():
        step = step_id(old_spec)
        if step is None:
            continue
        if new_spec is None:
            if old_spec.bpmn_id:
                add(StepChange("removed", step, old_spec.bpmn_name, process))
            continue
        attributes = spec_diff.comparisons.get(old_spec) or []
        what, details = _describe(old_spec, new_spec, attributes) if attributes else ([], [])
        if not old_spec.bpmn_id:  # boundary events added to or removed from a step
            what, details = (["boundary events"], []) if attributes else ([], [])
        if getattr(new_spec, "manual", False):
            forms = _form_changed(old_spec, new_spec, old.forms, new.forms)
            if forms:
                changed_forms.add(step)
                what = [*what, "form"] if "form" not in what else what
                details = [*details, *(f"form: {name} changed" for name in forms)]
        if what:  # named as in the newer version, where the diagram marks it
            owner = new_spec if new_spec.bpmn_id else None
            add(StepChange("changed", step_id(new_spec) or step, owner.bpmn_name if owner else None, process,
                           tuple(what), tuple(details)))
    for new_spec in spec_diff.added:
        step = step_id(new_spec)
        if new_spec.bpmn_id:
            add(StepChange("added", step, new_spec.bpmn_name, process))
    return list(found.values()), changed_forms


def _all_steps(process: str, spec, kind: str) -> list[StepChange]:
    return [StepChange(kind, s.bpmn_id, s.bpmn_name, process) for s in spec.task_specs.values() if s.bpmn_id]


def compute(old: ProcessVersion, new: ProcessVersion) -> VersionDiff:
    old_spec, old_subs = SPECS.get(old)
    new_spec, new_subs = SPECS.get(new)
    spec_diffs: dict = {old_spec.name: SpecDiff(REGISTRY, old_spec, new_spec)}
    for name, sub in old_subs.items():
        spec_diffs[name] = SpecDiff(REGISTRY, sub, new_subs[name]) if name in new_subs else None
    changes, changed_forms = [], set()
    for name, spec_diff in spec_diffs.items():
        if spec_diff is None:
            changes += _all_steps(name, old_subs[name], "removed")
            continue
        found, forms = _changes_in(name, spec_diff, old, new)
        changes += found
        changed_forms |= forms
    added = [name for name in new_subs if name not in old_subs]
    for name in added:
        changes += _all_steps(name, new_subs[name], "added")
    removed = [name for name in old_subs if name not in new_subs]
    return VersionDiff(VersionRef.of(old), VersionRef.of(new), changes, spec_diffs, old_spec, old_subs, new_spec,
                       new_subs, added, removed, changed_forms)


class DiffCache:
    """Diffs per (older, newer) version pair; versions are immutable, so entries never go stale."""

    def __init__(self, size: int = 16):
        self._diffs: OrderedDict[tuple, VersionDiff] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, old: ProcessVersion, new: ProcessVersion) -> VersionDiff:
        key = (old.id, old.content_hash, new.id, new.content_hash)
        with self._lock:
            if key in self._diffs:
                self._diffs.move_to_end(key)
                return self._diffs[key]
        found = compute(old, new)
        with self._lock:
            self._diffs[key] = found
            while len(self._diffs) > self._size:
                self._diffs.popitem(last=False)
        return found


DIFFS = DiffCache()


def version_diff(old: ProcessVersion, new: ProcessVersion) -> VersionDiff:
    return DIFFS.get(old, new)
