"""Process owners change the procedure: drafts of a process model, edited, checked and deployed.

A draft is a copy of a version's files (BPMN documents and the forms of their user tasks) that
process owners change freely: in the browser's modeler and form editor, or by uploading files
made in another editor (Camunda Modeler, spiff-arena). Deploying a draft makes a new immutable
version through `app.engine.library.deploy`; episodes already running keep their version.

Every file that enters a draft is checked first (size, UTF-8, well-formed XML with a BPMN root,
valid JSON), and a refusal changes nothing. Each draft carries a revision number, so a save
based on an older copy is refused instead of silently undoing someone else's work. Line endings
are normalised to "\\n": a version downloaded as a zip and read back with
`Bundle.from_directory` then has exactly the same content hash.
"""
from __future__ import annotations

import io
import json
import logging
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app import audit
from app.clock import now
from app.engine import library
from app.engine.errors import ProcessInvalid
from app.engine.forms import check_schema
from app.models import OPEN_STATUSES, Episode, ProcessDraft, ProcessVersion, User

log = logging.getLogger(__name__)

MAX_FILE_BYTES = library.MAX_FILE_BYTES  # one BPMN or form file
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # one upload: a zip of a whole process model
MAX_UNZIPPED_BYTES = 20 * 1024 * 1024  # what a zip may expand to, so a zip bomb is refused unread
MAX_ZIP_ENTRIES = 200
MAX_NOTE = 2000

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_BPMN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\.bpmn")
_FORM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\.json")
_PROCESS_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")
# Files that editors and operating systems put beside a model; a zip may carry them unremarked.
_IGNORED = re.compile(r"(^|/)(__MACOSX/|\.[^/]*$|process_model\.json$|README(\.md)?$)")
NEW_SCHEMA = '{\n  "title": "New form",\n  "type": "object",\n  "properties": {}\n}\n'


class DraftRefused(Exception):
    """Nothing was changed; `problems` says why, each in words the process owner can act on."""

    def __init__(self, problems: list[str] | str, *, field_name: str | None = None, status: int = 400):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.field_name = field_name
        self.status = status
        super().__init__("; ".join(self.problems))


class TaskFormRefused(DraftRefused):
    """The file names as typed were not usable: {field: problem}."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(list(errors.values()))


# ---------------------------------------------------------------- the library


@dataclass
class VersionRow:
    version: ProcessVersion
    deployed_by: str | None
    open_episodes: int
    current: bool


@dataclass
class ProcessEntry:
    process_id: str
    name: str
    versions: list[VersionRow]
    drafts: list[ProcessDraft] = field(default_factory=list)

    @property
    def current(self) -> VersionRow:
        return self.versions[0]


def open_episode_counts(session: Session) -> dict[int, int]:
    """Open episodes on each process version, in one grouped count."""
    rows = session.execute(select(Episode.process_version_id, func.count())
                           .where(Episode.status.in_(OPEN_STATUSES))
                           .group_by(Episode.process_version_id))
    return {version_id: count for version_id, count in rows}


def open_episodes_by_version(session: Session, process_id: str) -> dict[int, int]:
    """Open episodes on each version number of one process, in one grouped count."""
    rows = session.execute(select(ProcessVersion.version, func.count(Episode.id))
                           .join(Episode, Episode.process_version_id == ProcessVersion.id)
                           .where(ProcessVersion.process_id == process_id, Episode.status.in_(OPEN_STATUSES))
                           .group_by(ProcessVersion.version))
    return {number: count for number, count in rows}


def library_entries(session: Session, *, with_drafts: bool) -> list[ProcessEntry]:
    """Every process with its versions (newest, the current one, first) and its open drafts."""
    deployer = aliased(User)
    rows = session.execute(select(ProcessVersion, deployer.full_name)
                           .outerjoin(deployer, deployer.id == ProcessVersion.deployed_by_id)
                           .order_by(ProcessVersion.process_id, ProcessVersion.version.desc())).all()
    counts = open_episode_counts(session)
    entries: dict[str, ProcessEntry] = {}
    for version, deployed_by in rows:
        entry = entries.get(version.process_id)
        if entry is None:
            entry = entries[version.process_id] = ProcessEntry(version.process_id, version.name, [])
        entry.versions.append(VersionRow(version, deployed_by, counts.get(version.id, 0), not entry.versions))
    if with_drafts:
        for draft in open_drafts(session):
            entry = entries.get(draft.process_id)
            if entry is None:  # a new process, uploaded but never deployed
                entry = entries[draft.process_id] = ProcessEntry(draft.process_id, draft.title, [])
            entry.drafts.append(draft)
    return list(entries.values())


def open_drafts(session: Session) -> list[ProcessDraft]:
    return list(session.scalars(select(ProcessDraft).where(ProcessDraft.status == "open")
                                .order_by(ProcessDraft.process_id, ProcessDraft.updated_at.desc())))


def find_version(session: Session, process_id: str, number: int) -> ProcessVersion | None:
    return session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                       ProcessVersion.version == number))


def current_number(session: Session, process_id: str) -> int | None:
    return session.scalar(select(func.max(ProcessVersion.version)).where(ProcessVersion.process_id == process_id))


def deployed_by_name(session: Session, version: ProcessVersion) -> str | None:
    return session.scalar(select(User.full_name).where(User.id == version.deployed_by_id)) \
        if version.deployed_by_id else None


# ---------------------------------------------------------------- what a model's files say


@dataclass
class UserTask:
    id: str
    name: str
    lane: str | None
    schema_file: str | None
    ui_file: str | None
    bpmn_file: str


@dataclass
class FormEntry:
    """A form file with the UI schema that goes with it and the user tasks that show it."""

    schema_file: str
    ui_file: str | None
    tasks: list[UserTask]
    schema_present: bool
    ui_present: bool


def _parse_xml(text: str):
    """The root element, never fetching or expanding anything the document points to."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    return etree.fromstring(text.encode("utf-8"), parser)


def main_file(process_id: str, bpmn_files: dict[str, str]) -> str | None:
    """The file that defines the process itself (others hold called processes)."""
    names = sorted(bpmn_files)
    return next((n for n in names if f'id="{process_id}"' in bpmn_files[n]), names[0] if names else None)


def user_tasks(bpmn_files: dict[str, str]) -> list[UserTask]:
    """The user tasks of every file, in document order, with their lane and form files."""
    found = []
    for name in sorted(bpmn_files):
        try:
            root = _parse_xml(bpmn_files[name])
        except (etree.XMLSyntaxError, ValueError):
            continue  # a broken file is reported by validation
        lanes = {ref.text.strip(): lane.get("name") for lane in root.iter(f"{{{BPMN_NS}}}lane")
                 for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef") if ref.text}
        for task in root.iter(f"{{{BPMN_NS}}}userTask"):
            props = {p.get("name"): p.get("value") for p in task.iter(f"{{{SPIFF_NS}}}property")}
            task_id = task.get("id") or ""
            found.append(UserTask(task_id, task.get("name") or task_id, lanes.get(task_id),
                                  props.get("formJsonSchemaFilename"), props.get("formUiSchemaFilename"), name))
    return found


def ui_name_for(schema_file: str) -> str:
    """The UI schema file a form gets when no task names one: x.schema.json -> x.uischema.json."""
    stem = schema_file.removesuffix(".json").removesuffix(".schema")
    return f"{stem}.uischema.json"


def form_entries(bpmn_files: dict[str, str], forms: dict[str, str]) -> list[FormEntry]:
    """Each form the tasks name (present or missing), then the form files no task names, a
    schema with its conventional UI schema (x.schema.json, x.uischema.json) as one entry."""
    entries: dict[str, FormEntry] = {}
    for task in user_tasks(bpmn_files):
        if not task.schema_file:
            continue
        entry = entries.get(task.schema_file)
        if entry is None:
            entry = entries[task.schema_file] = FormEntry(task.schema_file, task.ui_file, [],
                                                          task.schema_file in forms, task.ui_file in forms)
        entry.tasks.append(task)
    claimed = set(entries) | {e.ui_file for e in entries.values() if e.ui_file}
    for name in sorted(forms):
        if name in claimed or name.endswith(".uischema.json"):
            continue
        ui = ui_name_for(name)
        entries[name] = FormEntry(name, None if ui in claimed else ui, [], True, ui in forms and ui not in claimed)
        claimed |= {name, ui}
    for name in sorted(set(forms) - claimed):  # a UI schema whose form is gone
        entries[name] = FormEntry(name, None, [], True, False)
    return list(entries.values())


def form_entry(bpmn_files: dict[str, str], forms: dict[str, str], name: str) -> FormEntry | None:
    """The entry a form file belongs to, whether `name` is its schema or its UI schema."""
    return next((e for e in form_entries(bpmn_files, forms) if name in (e.schema_file, e.ui_file)), None)


def file_of(bpmn_files: dict[str, str], forms: dict[str, str], path: str) -> tuple[str, str] | None:
    """(file name, text) for a path in the zip layout: `name.bpmn` or `forms/name.json`."""
    if path.startswith("forms/"):
        name = path.removeprefix("forms/")
        return (name, forms[name]) if name in forms else None
    return (path, bpmn_files[path]) if path in bpmn_files else None


# ---------------------------------------------------------------- checking files as they come in


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(name: str, data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise DraftRefused(f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        return _normalise(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DraftRefused(f"{name} is not UTF-8 text: save it as UTF-8 and upload it again") from None


def bpmn_problem(name: str, text: str) -> str | None:
    """Why the text cannot be a BPMN file, or None. The model's content is checked by validation."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
    try:
        root = _parse_xml(text)
    except etree.XMLSyntaxError as exc:
        return f"{name}: the XML does not parse: {exc}"
    except ValueError as exc:
        return f"{name}: the XML cannot be read: {exc}"
    if root.getroottree().docinfo.doctype:
        return f"{name}: a BPMN file must not declare a DOCTYPE"
    if root.tag != f"{{{BPMN_NS}}}definitions":
        return f"{name} is not a BPMN 2.0 file: its first element is <{etree.QName(root).localname}>, " \
               f"not <bpmn:definitions>"
    return None


def json_problem(label: str, text: str) -> str | None:
    """Why the text is not JSON, saying where: "line 3, column 5: Expecting ',' delimiter"."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{label} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except RecursionError:
        return f"{label} is nested too deeply"
    return None


def _checked_name(name: str, pattern: re.Pattern, kind: str) -> str:
    if not pattern.fullmatch(name):
        raise DraftRefused(f"“{name}” cannot be the name of a {kind} file: use letters, digits, dots, hyphens and "
                           f"underscores, ending in {'.bpmn' if kind == 'BPMN' else '.json'}")
    return name


def _read_limited(stream: BinaryIO, limit: int, name: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise DraftRefused(f"{name} is larger than {limit // (1024 * 1024)} MB")
    return data


@dataclass
class Files:
    """Files read from an upload, each checked; `whole` when they replace the draft's content."""

    bpmn_files: dict[str, str]
    forms: dict[str, str]
    whole: bool = False


def read_upload(filename: str, stream: BinaryIO) -> Files:
    """A .bpmn file, a form .json file, or a .zip of a processes directory (*.bpmn at the top and
    forms/*.json, or spiff-arena's layout with the forms beside the BPMN). Raises DraftRefused."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    if lower.endswith(".zip"):
        return _read_zip(base, _read_limited(stream, MAX_UPLOAD_BYTES, base))
    if lower.endswith(".bpmn") or lower.endswith(".bpmn20.xml"):
        name = _checked_name(re.sub(r"\.bpmn20\.xml$", ".bpmn", base, flags=re.I), _BPMN_NAME, "BPMN")
        text = _decode(base, _read_limited(stream, MAX_FILE_BYTES, base))
        if problem := bpmn_problem(base, text):
            raise DraftRefused(problem)
        return Files({name: text}, {})
    if lower.endswith(".json"):
        name = _checked_name(base, _FORM_NAME, "form")
        text = _decode(base, _read_limited(stream, MAX_FILE_BYTES, base))
        if problem := json_problem(base, text):
            raise DraftRefused(problem)
        return Files({}, {name: text})
    raise DraftRefused(f"{base or 'The file'} is not a .bpmn, .json or .zip file")


def _zip_prefix(names: list[str]) -> str:
    """A zip of the folder itself (processes/caf_episode.bpmn ...) is read as if unpacked inside it."""
    if any("/" not in n for n in names):
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    return f"{tops.pop()}/" if len(tops) == 1 and not tops & {"forms"} else ""


def _read_zip(zip_name: str, data: bytes) -> Files:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if not i.is_dir() and not _IGNORED.search(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise DraftRefused(f"{zip_name} is not a zip file that can be read") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise DraftRefused(f"{zip_name} holds {len(entries)} files: a process model has at most {MAX_ZIP_ENTRIES}")
    if sum(i.file_size for i in entries) > MAX_UNZIPPED_BYTES:
        raise DraftRefused(f"{zip_name} unpacks to more than {MAX_UNZIPPED_BYTES // (1024 * 1024)} MB")
    prefix = _zip_prefix([i.filename for i in entries])
    files, problems = Files({}, {}, whole=True), []
    for info in entries:
        path = info.filename.removeprefix(prefix)
        parts = path.split("/")
        if len(parts) == 1 and path.endswith(".bpmn"):
            target, pattern, kind = files.bpmn_files, _BPMN_NAME, "BPMN"
        elif path.endswith(".json") and (len(parts) == 1 or (len(parts) == 2 and parts[0] == "forms")):
            target, pattern, kind = files.forms, _FORM_NAME, "form"
        else:
            problems.append(f"{path}: not part of a process model (eCAF reads *.bpmn and forms/*.json)")
            continue
        name = parts[-1]
        try:
            _checked_name(name, pattern, kind)
            if name in target:
                raise DraftRefused(f"{path}: there are two files called {name}")
            if info.file_size > MAX_FILE_BYTES:
                raise DraftRefused(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
            with archive.open(info) as member:
                text = _decode(path, member.read(MAX_FILE_BYTES + 1))
            problem = bpmn_problem(path, text) if kind == "BPMN" else json_problem(path, text)
            if problem:
                raise DraftRefused(problem)
            target[name] = text
        except DraftRefused as refusal:
            problems.extend(refusal.problems)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError, OSError):
            problems.append(f"{path}: cannot be unpacked (damaged, encrypted or compressed in an unusual way)")
    if not problems and not files.bpmn_files:
        problems.append(f"{zip_name} has no .bpmn file at its top level")
    if problems:
        raise DraftRefused(problems)
    return files


def zip_of(bpmn_files: dict[str, str], forms: dict[str, str]) -> bytes:
    """The layout `ecaf processes deploy DIR` reads: *.bpmn at the top and forms/*.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in [*sorted(bpmn_files.items()), *((f"forms/{n}", t) for n, t in sorted(forms.items()))]:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))  # the same files give the same zip
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


# ---------------------------------------------------------------- drafts


def find_draft(session: Session, draft_id: int, *, for_update: bool = False) -> ProcessDraft | None:
    """An open draft; deployed and discarded drafts are history, not something to edit."""
    draft = session.get(ProcessDraft, draft_id, with_for_update=for_update or None)
    return draft if draft is not None and draft.status == "open" else None


def _touch(draft: ProcessDraft, user: User) -> None:
    draft.revision += 1
    draft.updated_by_id = user.id
    draft.updated_at = now()


def _check_revision(draft: ProcessDraft, revision: str | int | None) -> None:
    if str(revision or "").strip() != str(draft.revision):
        who = draft.updated_by.full_name if draft.updated_by else "someone else"
        raise DraftRefused(f"This draft was changed by {who} since you opened it, so nothing was saved. "
                           f"Reload the page to get their changes, then make yours again.", status=409)


def create_draft(session: Session, version: ProcessVersion, user: User) -> ProcessDraft:
    """A copy of the version's files to change."""
    stamp = now()
    draft = ProcessDraft(process_id=version.process_id, base_version_id=version.id, title=version.name,
                         bpmn_files=dict(version.bpmn_files), forms=dict(version.forms), status="open",
                         created_by_id=user.id, created_at=stamp, updated_by_id=user.id, updated_at=stamp,
                         revision=1)
    session.add(draft)
    session.flush()
    audit.record(session, "draft_created", actor_id=user.id, process_id=version.process_id, draft_id=draft.id,
                 from_version=version.version)
    return draft


def create_draft_from_upload(session: Session, process_id: str, filename: str, stream: BinaryIO,
                             user: User) -> ProcessDraft:
    """A draft of a model made elsewhere: a .bpmn file or a zip of a processes directory."""
    process_id = (process_id or "").strip()
    if not _PROCESS_ID.fullmatch(process_id):
        raise DraftRefused("Enter the process id: letters, digits and underscores, as in the BPMN "
                           "(for example caf_episode)", field_name="process_id")
    files = read_upload(filename, stream)
    if not files.bpmn_files:
        raise DraftRefused("Upload a .bpmn file, or a .zip holding one, to start a draft")
    stamp = now()
    draft = ProcessDraft(process_id=process_id, base_version_id=None, title=process_id,
                         bpmn_files=files.bpmn_files, forms=files.forms, status="open", created_by_id=user.id,
                         created_at=stamp, updated_by_id=user.id, updated_at=stamp, revision=1)
    session.add(draft)
    session.flush()
    audit.record(session, "draft_created", actor_id=user.id, process_id=process_id, draft_id=draft.id,
                 uploaded=filename, files=sorted(files.bpmn_files) + sorted(files.forms))
    return draft


def save_bpmn(session: Session, draft: ProcessDraft, user: User, filename: str, xml: str,
              revision: str | int | None) -> None:
    """The modeler's XML for one of the draft's BPMN files."""
    _check_revision(draft, revision)
    if filename not in draft.bpmn_files:
        raise DraftRefused(f"This draft has no file called {filename}")
    xml = _normalise(xml or "")
    if not xml.strip():
        raise DraftRefused("There was no BPMN to save")
    if problem := bpmn_problem(filename, xml):
        raise DraftRefused(problem)
    if xml == draft.bpmn_files[filename]:
        return
    draft.bpmn_files = {**draft.bpmn_files, filename: xml}
    _touch(draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[filename], how="modeler")


def save_form(session: Session, draft: ProcessDraft, user: User, entry: FormEntry, schema_text: str,
              ui_text: str, revision: str | int | None) -> dict[str, str]:
    """A form's JSON Schema and UI schema as typed. Returns {field: problem}; saves only when empty."""
    _check_revision(draft, revision)
    schema_text, ui_text = _normalise(schema_text or ""), _normalise(ui_text or "")
    errors = form_problems(schema_text, ui_text)
    if errors:
        return errors
    changed = {entry.schema_file: schema_text}
    if entry.ui_file and (ui_text.strip() or entry.ui_file in draft.forms):
        changed[entry.ui_file] = ui_text if ui_text.strip() else "{}\n"
    changed = {name: text for name, text in changed.items() if draft.forms.get(name) != text}
    if changed:
        draft.forms = {**draft.forms, **changed}
        _touch(draft, user)
        audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                     files=sorted(changed), how="form editor")
    return {}


def form_problems(schema_text: str, ui_text: str) -> dict[str, str]:
    """{"schema" | "ui": what is wrong} for a form as typed in the editor."""
    errors = {}
    for key, label, text in (("schema", "The JSON Schema", schema_text), ("ui", "The UI schema", ui_text)):
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            errors[key] = f"{label} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
        elif key == "schema" and not text.strip():
            errors[key] = "Enter the JSON Schema of the form"
        elif text.strip() and (problem := json_problem(label, text)):
            errors[key] = problem
    if "schema" not in errors:
        schema = json.loads(schema_text)
        if not isinstance(schema, dict):
            errors["schema"] = "The JSON Schema must be a JSON object ({ … })"
        elif problem := check_schema(schema):
            errors["schema"] = f"The JSON Schema is not valid: {problem}"
    if "ui" not in errors and ui_text.strip() and not isinstance(json.loads(ui_text), dict):
        errors["ui"] = "The UI schema must be a JSON object ({ … })"
    return errors


def add_form(session: Session, draft: ProcessDraft, user: User, name: str, revision: str | int | None) -> str:
    """A new form file with an empty object schema to start from."""
    _check_revision(draft, revision)
    name = (name or "").strip()
    if not name:
        raise DraftRefused("Enter a name for the form file, for example referral.schema.json", field_name="name")
    if not name.endswith(".json"):
        name += ".json"
    try:
        _checked_name(name, _FORM_NAME, "form")
    except DraftRefused as refusal:
        raise DraftRefused(refusal.problems, field_name="name") from None
    if name in draft.forms:
        raise DraftRefused(f"This draft already has a form file called {name}", field_name="name")
    draft.forms = {**draft.forms, name: NEW_SCHEMA}
    _touch(draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[name], how="form added")
    return name


def remove_file(session: Session, draft: ProcessDraft, user: User, path: str, revision: str | int | None) -> str:
    """Take a form file (forms/name.json) or a BPMN file out of the draft; the last BPMN file stays."""
    _check_revision(draft, revision)
    found = file_of(draft.bpmn_files, draft.forms, path)
    if found is None:
        raise DraftRefused(f"This draft has no file {path}", status=404)
    name = found[0]
    if path.startswith("forms/"):
        draft.forms = {n: t for n, t in draft.forms.items() if n != name}
    else:
        if len(draft.bpmn_files) == 1:
            raise DraftRefused("A process model needs a BPMN file: upload another before removing this one")
        draft.bpmn_files = {n: t for n, t in draft.bpmn_files.items() if n != name}
    _touch(draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[path], how="file removed")
    return name


def set_task_form(session: Session, draft: ProcessDraft, user: User, task_id: str, schema_file: str,
                  ui_file: str, revision: str | int | None) -> UserTask:
    """Name the form (and UI schema) a user task shows: the spiff-arena properties
    `formJsonSchemaFilename` and `formUiSchemaFilename`, which the modeler has no panel for."""
    _check_revision(draft, revision)
    task = next((t for t in user_tasks(draft.bpmn_files) if t.id == task_id), None)
    if task is None:
        raise DraftRefused(f"This draft has no user task {task_id}", status=404)
    schema_file, ui_file = (schema_file or "").strip(), (ui_file or "").strip()
    errors = {}
    if not schema_file:
        errors["schema_file"] = "Enter the name of the form's JSON Schema file"
    for key, name in (("schema_file", schema_file), ("ui_file", ui_file)):
        if name and key not in errors and not _FORM_NAME.fullmatch(name):
            errors[key] = "Use letters, digits, dots, hyphens and underscores, ending in .json"
    if errors:
        raise TaskFormRefused(errors)
    root = _parse_xml(draft.bpmn_files[task.bpmn_file])
    element = next(e for e in root.iter(f"{{{BPMN_NS}}}userTask") if e.get("id") == task_id)
    _set_properties(element, {"formJsonSchemaFilename": schema_file, "formUiSchemaFilename": ui_file or None})
    xml = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8").decode("utf-8") + "\n"
    draft.bpmn_files = {**draft.bpmn_files, task.bpmn_file: xml}
    _touch(draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[task.bpmn_file], how="task form", task=task_id, form=schema_file, ui_form=ui_file or None)
    return task


def _set_properties(task, values: dict[str, str | None]) -> None:
    """Set (or, for None, remove) spiffworkflow:property entries under the task's extensionElements."""
    extensions = task.find(f"{{{BPMN_NS}}}extensionElements")
    if extensions is None:
        extensions = etree.Element(f"{{{BPMN_NS}}}extensionElements")
        # BPMN puts extensionElements straight after any documentation.
        docs = task.findall(f"{{{BPMN_NS}}}documentation")
        task.insert(task.index(docs[-1]) + 1 if docs else 0, extensions)
    properties = extensions.find(f"{{{SPIFF_NS}}}properties")
    if properties is None:
        properties = etree.SubElement(extensions, f"{{{SPIFF_NS}}}properties", nsmap={"spiffworkflow": SPIFF_NS})
    for name, value in values.items():
        existing = [p for p in properties.findall(f"{{{SPIFF_NS}}}property") if p.get("name") == name]
        for extra in existing[1:]:
            properties.remove(extra)
        if value is None:
            if existing:
                properties.remove(existing[0])
        elif existing:
            existing[0].set("value", value)
        else:
            etree.SubElement(properties, f"{{{SPIFF_NS}}}property", name=name, value=value)


def upload(session: Session, draft: ProcessDraft, user: User, filename: str, stream: BinaryIO,
           revision: str | int | None) -> list[str]:
    """Add or replace one file, or replace every file with a zip's. Returns the paths changed."""
    _check_revision(draft, revision)
    files = read_upload(filename, stream)
    if files.whole:
        draft.bpmn_files, draft.forms = files.bpmn_files, files.forms
    else:
        draft.bpmn_files = {**draft.bpmn_files, **files.bpmn_files}
        draft.forms = {**draft.forms, **files.forms}
    changed = sorted(files.bpmn_files) + [f"forms/{n}" for n in sorted(files.forms)]
    _touch(draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=changed, how="upload", uploaded=filename, replaced_all=files.whole)
    return changed


def problems_of(draft: ProcessDraft) -> list[str]:
    """Everything that stops the draft being deployed, each naming the element or file at fault."""
    try:
        library.validate_bundle(library.Bundle(draft.bpmn_files, draft.forms), draft.process_id)
    except ProcessInvalid as exc:
        return list(exc.problems)
    except Exception as exc:  # a model no check foresaw: say so, never let it through
        log.exception("validating draft %s failed", draft.id)
        return [f"the model could not be checked ({type(exc).__name__}: {exc})"]
    return []


def deploy_draft(session: Session, draft: ProcessDraft, user: User, change_note: str,
                 revision: str | int | None) -> ProcessVersion:
    """A new immutable version from the draft. Refused, deploying nothing, while any problem remains."""
    _check_revision(draft, revision)
    note = (change_note or "").strip()
    if not note:
        raise DraftRefused("Enter a change note: what changed and why", field_name="change_note")
    if len(note) > MAX_NOTE:
        raise DraftRefused(f"The change note must be {MAX_NOTE} characters or fewer", field_name="change_note")
    bundle = library.Bundle(draft.bpmn_files, draft.forms)
    try:
        with session.begin_nested():
            version, created = library.deploy(session, bundle, process_id=draft.process_id,
                                              deployed_by_id=user.id, change_note=note)
    except ProcessInvalid as exc:
        raise DraftRefused(exc.problems, field_name="problems") from None
    except IntegrityError:
        raise DraftRefused("Another version was deployed at the same moment, so this one was not. "
                           "Deploy again.") from None
    if not created:
        raise DraftRefused(f"This draft is the same as version {version.version}, which is already deployed: "
                           f"there is nothing new to deploy")
    draft.status, draft.deployed_version_id, draft.note = "deployed", version.id, note
    _touch(draft, user)
    audit.record(session, "process_deployed", actor_id=user.id, process_id=version.process_id,
                 version=version.version, content_hash=version.content_hash, change_note=note, draft_id=draft.id,
                 from_version=draft.base_version.version if draft.base_version else None)
    return version


def discard(session: Session, draft: ProcessDraft, user: User) -> None:
    draft.status = "discarded"
    _touch(draft, user)
    audit.record(session, "draft_discarded", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id)
