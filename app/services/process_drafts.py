"""Process owners change the procedure: drafts of a process model, edited and checked.

A draft is a copy of a version's files (BPMN documents and the forms of their user tasks) that
process owners change freely: in the browser's modeler and form editor, or by uploading files
made in another editor (Camunda Modeler, spiff-arena). Every file that enters a draft is checked
first (`draft_files`), and a refusal changes nothing. Each draft carries a revision number, so a
save based on an older copy is refused instead of silently undoing someone else's work. A change
to a draft waiting for review, or approved, takes it back to editing: deploying it
(`draft_review`) needs a second process owner's approval of exactly its content.
"""
from __future__ import annotations

import json
import logging
import re
from typing import BinaryIO

from lxml import etree
from sqlalchemy.orm import Session

from app import audit
from app.clock import now
from app.engine import library
from app.engine.errors import ProcessInvalid
from app.engine.forms import check_schema
from app.models import ProcessDraft, ProcessVersion, User

from .draft_files import (FORM_NAME, MAX_FILE_BYTES, DraftRefused, bpmn_problem, checked_name, json_problem,
                          normalise, read_upload)
from .model_files import BPMN_NS, SPIFF_NS, FormEntry, UserTask, file_of, parse_xml, user_tasks

log = logging.getLogger(__name__)

_PROCESS_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")
NEW_SCHEMA = '{\n  "title": "New form",\n  "type": "object",\n  "properties": {}\n}\n'

class TaskFormRefused(DraftRefused):
    """The file names as typed were not usable: {field: problem}."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(list(errors.values()))


def find_draft(session: Session, draft_id: int, *, for_update: bool = False) -> ProcessDraft | None:
    """An open draft; deployed and discarded drafts are history, not something to edit."""
    draft = session.get(ProcessDraft, draft_id, with_for_update=for_update or None)
    return draft if draft is not None and draft.status == "open" else None


def touch(session: Session, draft: ProcessDraft, user: User) -> None:
    draft.revision += 1
    draft.updated_by_id = user.id
    draft.updated_at = now()
    withdraw_review_if_changed(session, draft, user)


def content_hash(draft: ProcessDraft) -> str:
    """The hash the draft would deploy with: what a reviewer approves is exactly what deploys."""
    return library.Bundle(draft.bpmn_files, draft.forms).content_hash


def withdraw_review_if_changed(session: Session, draft: ProcessDraft, user: User) -> bool:
    """A draft changed while waiting for review, or after approval, needs submitting (and approving) again."""
    if draft.review_status not in ("submitted", "approved"):
        return False
    recorded = draft.approved_hash if draft.review_status == "approved" else draft.submitted_hash
    if recorded == content_hash(draft):
        return False
    audit.record(session, "draft_review_withdrawn", actor_id=user.id, process_id=draft.process_id,
                 draft_id=draft.id, was=draft.review_status, content_hash=content_hash(draft))
    draft.review_status = "editing"
    draft.approved_hash = None
    return True


def check_revision(draft: ProcessDraft, revision: str | int | None) -> None:
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
    check_revision(draft, revision)
    if filename not in draft.bpmn_files:
        raise DraftRefused(f"This draft has no file called {filename}")
    xml = normalise(xml or "")
    if not xml.strip():
        raise DraftRefused("There was no BPMN to save")
    if problem := bpmn_problem(filename, xml):
        raise DraftRefused(problem)
    if xml == draft.bpmn_files[filename]:
        return
    draft.bpmn_files = {**draft.bpmn_files, filename: xml}
    touch(session, draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[filename], how="modeler")


def save_form(session: Session, draft: ProcessDraft, user: User, entry: FormEntry, schema_text: str,
              ui_text: str, revision: str | int | None) -> dict[str, str]:
    """A form's JSON Schema and UI schema as typed. Returns {field: problem}; saves only when empty."""
    check_revision(draft, revision)
    schema_text, ui_text = normalise(schema_text or ""), normalise(ui_text or "")
    errors = form_problems(schema_text, ui_text)
    if errors:
        return errors
    changed = {entry.schema_file: schema_text}
    if entry.ui_file and (ui_text.strip() or entry.ui_file in draft.forms):
        changed[entry.ui_file] = ui_text if ui_text.strip() else "{}\n"
    changed = {name: text for name, text in changed.items() if draft.forms.get(name) != text}
    if changed:
        draft.forms = {**draft.forms, **changed}
        touch(session, draft, user)
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
    check_revision(draft, revision)
    name = (name or "").strip()
    if not name:
        raise DraftRefused("Enter a name for the form file, for example referral.schema.json", field_name="name")
    if not name.endswith(".json"):
        name += ".json"
    try:
        checked_name(name, FORM_NAME, "form")
    except DraftRefused as refusal:
        raise DraftRefused(refusal.problems, field_name="name") from None
    if name in draft.forms:
        raise DraftRefused(f"This draft already has a form file called {name}", field_name="name")
    draft.forms = {**draft.forms, name: NEW_SCHEMA}
    touch(session, draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[name], how="form added")
    return name


def remove_file(session: Session, draft: ProcessDraft, user: User, path: str, revision: str | int | None) -> str:
    """Take a form file (forms/name.json) or a BPMN file out of the draft; the last BPMN file stays."""
    check_revision(draft, revision)
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
    touch(session, draft, user)
    audit.record(session, "draft_saved", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id,
                 files=[path], how="file removed")
    return name


def set_task_form(session: Session, draft: ProcessDraft, user: User, task_id: str, schema_file: str,
                  ui_file: str, revision: str | int | None) -> UserTask:
    """Name the form (and UI schema) a user task shows: the spiff-arena properties
    `formJsonSchemaFilename` and `formUiSchemaFilename`, which the modeler has no panel for."""
    check_revision(draft, revision)
    task = next((t for t in user_tasks(draft.bpmn_files) if t.id == task_id), None)
    if task is None:
        raise DraftRefused(f"This draft has no user task {task_id}", status=404)
    schema_file, ui_file = (schema_file or "").strip(), (ui_file or "").strip()
    errors = {}
    if not schema_file:
        errors["schema_file"] = "Enter the name of the form's JSON Schema file"
    for key, name in (("schema_file", schema_file), ("ui_file", ui_file)):
        if name and key not in errors and not FORM_NAME.fullmatch(name):
            errors[key] = "Use letters, digits, dots, hyphens and underscores, ending in .json"
    if errors:
        raise TaskFormRefused(errors)
    root = parse_xml(draft.bpmn_files[task.bpmn_file])
    element = next(e for e in root.iter(f"{{{BPMN_NS}}}userTask") if e.get("id") == task_id)
    _set_properties(element, {"formJsonSchemaFilename": schema_file, "formUiSchemaFilename": ui_file or None})
    xml = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8").decode("utf-8") + "\n"
    draft.bpmn_files = {**draft.bpmn_files, task.bpmn_file: xml}
    touch(session, draft, user)
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
    check_revision(draft, revision)
    files = read_upload(filename, stream)
    if files.whole:
        draft.bpmn_files, draft.forms = files.bpmn_files, files.forms
    else:
        draft.bpmn_files = {**draft.bpmn_files, **files.bpmn_files}
        draft.forms = {**draft.forms, **files.forms}
    changed = sorted(files.bpmn_files) + [f"forms/{n}" for n in sorted(files.forms)]
    touch(session, draft, user)
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


def discard(session: Session, draft: ProcessDraft, user: User) -> None:
    draft.status = "discarded"
    touch(session, draft, user)
    audit.record(session, "draft_discarded", actor_id=user.id, process_id=draft.process_id, draft_id=draft.id)
