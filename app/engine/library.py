"""The process library: deploy BPMN models as immutable versions, and cache their parsed specs."""
from __future__ import annotations

import ast
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers
from app.clock import now
from app.models import ProcessVersion

from . import forms as form_tools
from .errors import NoProcessDeployed, ProcessInvalid
from .lanes import KNOWN_LANES
from .serializer import SERIALIZER_VERSION, dump_specs, load_specs

MAIN_PROCESS = "caf_episode"
MAX_FILE_BYTES = 5 * 1024 * 1024


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


def _parser_for(bundle: Bundle) -> SpiffBpmnParser:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    for name, xml in bundle.bpmn_files.items():
        if len(xml.encode()) > MAX_FILE_BYTES:
            raise ProcessInvalid([f"{name}: the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB"])
        try:
            parser.add_bpmn_str(xml.encode("utf-8"), filename=name)
        except ValidationException as exc:
            raise ProcessInvalid([f"{name}: {exc}"]) from exc
        except etree.XMLSyntaxError as exc:
            raise ProcessInvalid([f"{name}: the XML does not parse: {exc}"]) from exc
    return parser


def _element(spec) -> str:
    label = getattr(spec, "bpmn_name", None)
    return f"'{spec.bpmn_id or spec.name}'" + (f" ({label})" if label else "")


def _check_expressions(task_spec, problems: list[str]) -> None:
    """Scripts, conditions and timer expressions must at least compile: errors in them would
    otherwise show only when an episode reaches them."""
    def check(kind: str, source: str | None, mode: str = "exec") -> None:
        if not source:
            return
        try:
            ast.parse(source, mode=mode)
        except SyntaxError as exc:
            problems.append(f"{_element(task_spec)}: the {kind} has a syntax error: {exc.msg} (line {exc.lineno})")

    check("script", getattr(task_spec, "script", None))
    check("pre-script", getattr(task_spec, "prescript", None))
    check("post-script", getattr(task_spec, "postscript", None))
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        if condition is not None:  # None marks the default flow
            check("condition", condition.args[0], "eval")
    event = getattr(task_spec, "event_definition", None)
    if isinstance(event, TimerEventDefinition):
        check("timer expression", event.expression, "eval")
        try:
            literal = ast.literal_eval(event.expression)
        except (ValueError, SyntaxError):
            literal = None  # a variable or call: checked when it runs
        if isinstance(literal, str) and type(event).__name__ != "TimeDateEventDefinition":
            try:
                TimerEventDefinition.parse_iso_duration(literal)
            except Exception:
                problems.append(f"{_element(task_spec)}: the timer duration {literal!r} is not ISO 8601")
        elif literal is None and event.expression.strip().startswith("P"):
            problems.append(f"{_element(task_spec)}: the timer {event.expression!r} must be quoted, "
                            f"e.g. \"{event.expression.strip()}\"")


def validate_bundle(bundle: Bundle, process_id: str = MAIN_PROCESS):
    """Parse and check a bundle. Returns (spec, subprocess_specs); raises ProcessInvalid."""
    if not bundle.bpmn_files:
        raise ProcessInvalid(["there is no .bpmn file"])
    parser = _parser_for(bundle)
    try:
        if process_id not in parser.get_process_ids():
            raise ProcessInvalid([f"no executable process with id '{process_id}' is defined"])
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise ProcessInvalid([str(exc)]) from exc

    problems: list[str] = []
    operators = handlers.load_all()
    for process_spec in [spec, *subprocess_specs.values()]:
        for task_spec in process_spec.task_specs.values():
            _check_expressions(task_spec, problems)
            if getattr(task_spec, "manual", False):
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
                        problems.append(f"{filename}: not valid JSON: {exc}")
                        continue
                    if filename == schema_file and (error := form_tools.check_schema(document)):
                        problems.append(f"{filename}: not a valid JSON Schema: {error}")
                if task_spec.lane not in KNOWN_LANES:
                    problems.append(f"{_element(task_spec)}: the lane {task_spec.lane!r} is not a known role "
                                    f"({', '.join(sorted(KNOWN_LANES))})")
            operation = getattr(task_spec, "operation_name", None)
            if operation is not None and operation not in operators:
                problems.append(f"{_element(task_spec)}: no handler is registered for operator '{operation}'")
    if problems:
        raise ProcessInvalid(problems)
    return spec, subprocess_specs


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


class SpecCache:
    """Parsed specs per process version. Versions never change, so entries never go stale."""

    def __init__(self):
        self._specs: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def get(self, version: ProcessVersion):
        specs = self._specs.get(version.id)
        if specs is None:
            specs = load_specs(version.spec_json)
            with self._lock:
                self._specs[version.id] = specs
        return specs


SPECS = SpecCache()
