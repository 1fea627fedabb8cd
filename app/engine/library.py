"""The process library: deploy BPMN models as immutable versions, and cache their parsed specs."""
from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers
from app.clock import now
from app.models import ProcessVersion

from . import forms as form_tools
from . import model_checks, model_expressions
from .errors import NoProcessDeployed, ProcessInvalid
from .lanes import KNOWN_LANES
from .serializer import SERIALIZER_VERSION, dump_specs, load_specs

MAIN_PROCESS = "caf_episode"
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_BUNDLE_BYTES = 20 * 1024 * 1024
MAX_FILES = 200


@dataclass
class Bundle:
    """The files of one process model: BPMN documents and the forms of their user tasks."""

    bpmn_files: dict[str, str]
    forms: dict[str, str]

    @classmethod
    def from_directory(cls, directory: Path) -> "Bundle":
        directory = Path(directory)
        bpmn = {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.bpmn"))}
        form_dir = directory / "forms"
        form_files = {p.name: p.read_text(encoding="utf-8") for p in sorted(form_dir.glob("*.json"))} \
            if form_dir.is_dir() else {}
        return cls(bpmn, form_files)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for group in (self.bpmn_files, self.forms):
            for name in sorted(group):
                digest.update(name.encode() + b"\0" + group[name].encode() + b"\0")
        return digest.hexdigest()


def _size_problems(bundle: Bundle) -> list[str]:
    problems, total = [], 0
    if len(bundle.bpmn_files) + len(bundle.forms) > MAX_FILES:
        problems.append(f"the model has {len(bundle.bpmn_files) + len(bundle.forms)} files: at most {MAX_FILES} "
                        "are accepted")
    for name, text in [*bundle.bpmn_files.items(), *bundle.forms.items()]:
        size = len(text.encode("utf-8"))
        total += size
        if size > MAX_FILE_BYTES:
            problems.append(f"{name}: the file is {_megabytes(size)}, larger than the "
                            f"{_megabytes(MAX_FILE_BYTES)} limit")
    if total > MAX_BUNDLE_BYTES and not problems:
        problems.append(f"the model's files add up to {_megabytes(total)}, more than the "
                        f"{_megabytes(MAX_BUNDLE_BYTES)} limit")
    return problems


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB".replace(".0 MB", " MB")


def _spiff_problem(exc: ValidationException) -> str:
    """SpiffWorkflow's own complaint, with where it is and which element."""
    where = exc.file_name or ""
    if exc.line_number:
        where += f" line {exc.line_number}"
    element = f"'{exc.id}'" + (f" ({exc.name})" if exc.name else "") if exc.id else ""
    message = exc.args[0] if exc.args else str(exc)
    return ": ".join(part for part in (where, element, str(message).strip().rstrip(".")) if part)


def _parser_for(bundle: Bundle) -> SpiffBpmnParser:
    problems = _size_problems(bundle)
    if problems:
        raise ProcessInvalid(problems)
    documents = {}
    for name, xml in bundle.bpmn_files.items():
        documents[name], found = model_checks.check_document(name, xml.encode("utf-8"))
        problems += found
    if problems:
        raise ProcessInvalid(problems)
    parser = SpiffBpmnParser(validator=None)  # the schema was checked above, with every problem reported
    for name, root in documents.items():
        try:
            parser.add_bpmn_xml(root, filename=name)
        except ValidationException as exc:
            problems.append(_spiff_problem(exc))
    if problems:
        raise ProcessInvalid(problems)
    return parser


def _element(spec) -> str:
    label = getattr(spec, "bpmn_name", None)
    inner = getattr(spec, "task_spec", None)  # a multi-instance or loop step is named on its inner task
    if label is None and isinstance(inner, str) and inner in getattr(spec._wf_spec, "task_specs", {}):
        label = spec._wf_spec.task_specs[inner].bpmn_name
    return f"'{spec.bpmn_id or spec.name}'" + (f" ({label})" if label else "")


ISO_LITERAL = re.compile(r"^(R\d*/)?P[0-9YMWDTHS.,]+$|^\d{4}-\d{2}-\d{2}", re.IGNORECASE)


def _check_expressions(task_spec, problems: list[str]) -> None:
    """Every script, condition, timer, parameter and other expression must be in the process
    expression language (model_expressions): errors in them would otherwise show only when an
    episode reaches them, and anything outside the language must never run."""
    for kind, source, mode in model_expressions.expressions_of(task_spec):
        problems += model_expressions.problems_of(_element(task_spec), kind, source, mode)
    event = getattr(task_spec, "event_definition", None)
    if isinstance(event, TimerEventDefinition):
        _check_timer(task_spec, event, problems)


def _check_timer(task_spec, event: TimerEventDefinition, problems: list[str]) -> None:
    """Timer expressions are expressions: a literal must be a quoted, valid ISO 8601 value."""
    expression = (event.expression or "").strip()
    if ISO_LITERAL.match(expression):
        problems.append(f"{_element(task_spec)}: the timer {expression!r} must be quoted, e.g. \"{expression}\"")
        return
    if model_expressions.check(expression, "eval"):
        return  # already reported
    try:
        literal = ast.literal_eval(expression)
    except (ValueError, SyntaxError):
        return  # a variable or a call: its value is checked when the timer is reached
    if not isinstance(literal, str):
        problems.append(f"{_element(task_spec)}: the timer {expression} is not a text value in ISO 8601")
        return
    kind = type(event).__name__
    try:
        if kind == "TimeDateEventDefinition":
            if datetime.fromisoformat(literal).tzinfo is None:  # naive times are read in the server's zone
                problems.append(f"{_element(task_spec)}: the timer date {literal!r} needs a UTC offset, "
                                f"e.g. \"{literal}+00:00\"")
        elif kind == "CycleTimerEventDefinition":
            TimerEventDefinition.parse_iso_recurring_interval(literal)
        else:
            TimerEventDefinition.parse_iso_duration(literal)
    except Exception:
        what = {"TimeDateEventDefinition": "date", "CycleTimerEventDefinition": "cycle"}.get(kind, "duration")
        problems.append(f"{_element(task_spec)}: the timer {what} {literal!r} is not ISO 8601")


def _check_form(task_spec, bundle: Bundle, problems: list[str]) -> None:
    schema_file, ui_file = form_tools.form_files(task_spec)
    if not schema_file:
        problems.append(f"{_element(task_spec)}: the user task has no form (formJsonSchemaFilename)")
    for filename in filter(None, (schema_file, ui_file)):
        if filename not in bundle.forms:
            problems.append(f"{_element(task_spec)}: the form file {filename} is missing")
            continue
        try:
            document = json.loads(bundle.forms[filename])
        except json.JSONDecodeError as exc:
            problems.append(f"{_element(task_spec)}: the form file {filename} is not valid JSON: {exc}")
            continue
        if filename == schema_file and (error := form_tools.check_schema(document)):
            problems.append(f"{_element(task_spec)}: the form file {filename} is not a valid JSON Schema: {error}")


def _build_specs(parser: SpiffBpmnParser, process_id: str):
    """SpiffWorkflow builds every executable process of the bundle: (main spec, its subprocess specs,
    every spec built), or ProcessInvalid with each process's problem."""
    process_ids = parser.get_process_ids()
    if process_id not in process_ids:
        raise ProcessInvalid([f"no executable process with id '{process_id}' is defined"])
    built, problems, main = {}, [], None
    for pid in [process_id, *sorted(set(process_ids) - {process_id})]:
        try:
            spec = parser.get_spec(pid)
            subprocess_specs = parser.get_subprocess_specs(pid)
        except ValidationException as exc:
            problems.append(_spiff_problem(exc))
            continue
        built.setdefault(spec.name, spec)
        for name, sub in subprocess_specs.items():
            built.setdefault(name, sub)
        if pid == process_id:
            main = (spec, subprocess_specs)
    if problems:
        raise ProcessInvalid(problems)
    return main[0], main[1], list(built.values())


def validate_bundle(bundle: Bundle, process_id: str = MAIN_PROCESS):
    """Parse and check a bundle. Returns (spec, subprocess_specs); raises ProcessInvalid naming
    every problem found."""
    if not bundle.bpmn_files:
        raise ProcessInvalid(["there is no .bpmn file"])
    parser = _parser_for(bundle)
    spec, subprocess_specs, every_spec = _build_specs(parser, process_id)

    problems: list[str] = []
    operators = handlers.load_all()
    unknown_lanes: dict[str | None, list[str]] = {}
    for process_spec in every_spec:
        for task_spec in process_spec.task_specs.values():
            _check_expressions(task_spec, problems)
            if getattr(task_spec, "manual", False):
                _check_form(task_spec, bundle, problems)
                if task_spec.lane not in KNOWN_LANES:
                    unknown_lanes.setdefault(task_spec.lane, []).append(_element(task_spec))
            operation = getattr(task_spec, "operation_name", None)
            if operation is not None and operation not in operators:
                problems.append(f"{_element(task_spec)}: no handler is registered for operator '{operation}'")
    for lane, tasks in unknown_lanes.items():
        problems.append(f"the lane {lane!r} is not a known role ({', '.join(sorted(KNOWN_LANES))}); "
                        f"its user tasks: {', '.join(tasks)}" if lane else
                        f"these user tasks are in no lane, so nobody could do them: {', '.join(tasks)}")
    if problems:
        raise ProcessInvalid(list(dict.fromkeys(problems)))
    _check_it_starts(spec, subprocess_specs)
    return spec, subprocess_specs


def _check_it_starts(spec, subprocess_specs) -> None:
    """Build (but do not run) a workflow: SpiffWorkflow predicts every path when it starts, and a
    model it cannot predict would fail the first episode instead of the deploy."""
    try:
        BpmnWorkflow(spec, subprocess_specs)
    except RecursionError:
        raise ProcessInvalid([f"'{spec.name}': SpiffWorkflow cannot start the process: predicting its paths never "
                              "ends (a loop back to an earlier step with no waiting step on the way)"]) from None
    except Exception as exc:  # noqa: BLE001 - any failure here means no episode could start
        raise ProcessInvalid([f"'{spec.name}': SpiffWorkflow cannot start the process: {exc}"]) from exc


def deploy(session: Session, bundle: Bundle, *, process_id: str = MAIN_PROCESS,
           deployed_by_id: int | None = None, change_note: str | None = None) -> tuple[ProcessVersion, bool]:
    """Deploy a bundle as a new version, unless identical content is already deployed.

    Returns (version, created). A bundle with any problem deploys nothing."""
    content_hash = bundle.content_hash
    existing = session.scalar(select(ProcessVersion).where(
        ProcessVersion.process_id == process_id, ProcessVersion.content_hash == content_hash))
    if existing is not None:
        return existing, False
    spec, subprocess_specs = validate_bundle(bundle, process_id)
    number = (session.scalar(select(func.max(ProcessVersion.version))
                             .where(ProcessVersion.process_id == process_id)) or 0) + 1
    version = ProcessVersion(
        process_id=process_id, name=spec.description or process_id, version=number, content_hash=content_hash,
        bpmn_files=bundle.bpmn_files, forms=bundle.forms, spec_json=dump_specs(spec, subprocess_specs),
        serializer_version=SERIALIZER_VERSION, deployed_by_id=deployed_by_id, deployed_at=now(),
        change_note=change_note)
    session.add(version)
    session.flush()
    return version, True


def current_version(session: Session, process_id: str = MAIN_PROCESS) -> ProcessVersion:
    version = session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
                             .order_by(ProcessVersion.version.desc()).limit(1))
    if version is None:
        raise NoProcessDeployed(f"no version of process '{process_id}' is deployed: run `ecaf processes deploy`")
    return version


class VersionCache:
    """What a step or a form page needs of a process version, parsed once per process: its specs and
    its forms. Versions never change, so entries never go stale; they are keyed by content hash too,
    because a rebuilt database may reuse an id."""

    def __init__(self):
        self._specs: dict[tuple[int, str], tuple] = {}
        self._forms: dict[tuple[int, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def get(self, version: ProcessVersion):
        """(spec, subprocess specs) of the version."""
        key = (version.id, version.content_hash)
        specs = self._specs.get(key)
        if specs is None:
            specs = load_specs(version.spec_json)
            with self._lock:
                self._specs[key] = specs
        return specs

    def forms(self, version: ProcessVersion) -> dict[str, str]:
        """The version's form files (name -> JSON text); read from the database once per process."""
        key = (version.id, version.content_hash)
        forms = self._forms.get(key)
        if forms is None:
            forms = dict(version.forms or {})
            with self._lock:
                self._forms[key] = forms
        return forms


SPECS = VersionCache()


def forms_of(version: ProcessVersion) -> dict[str, str]:
    return SPECS.forms(version)
