"""The process library: versions of each process model, and drafts that process owners edit and deploy.

Process owners create, edit, validate and deploy drafts. Administrators may read the library and
its versions but change nothing and never see drafts. Pages work without JavaScript except the
modeler and the live form preview; a BPMN file made in another editor can be uploaded instead.
"""
from __future__ import annotations

import json

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import RequestEntityTooLarge

from app.attachments import content_disposition
from app.models import ProcessDraft
from app.services import process_drafts as drafts
from app.services.process_drafts import DraftRefused, TaskFormRefused
from app.web import runtime, schema_form
from app.web.access import current_user, roles
from app.web.form_input import text

bp = Blueprint("process_library", __name__, url_prefix="/processes")
READERS = ("process_owner", "administrator")
OWNER = "process_owner"
# Room in a request for the CSRF token, the form's other fields and the multipart framing.
ALLOWANCE = 64 * 1024
# Endpoints that take whole files, and how much each may receive.
LARGE_REQUESTS = {
    "process_library.upload": drafts.MAX_UPLOAD_BYTES + ALLOWANCE,
    "process_library.new_draft": drafts.MAX_UPLOAD_BYTES + ALLOWANCE,
    # JSON escaping can double the size of XML.
    "process_library.save_bpmn": 2 * drafts.MAX_FILE_BYTES + ALLOWANCE,
    "process_library.form_editor": 4 * drafts.MAX_FILE_BYTES + ALLOWANCE,
    "process_library.form_preview": 4 * drafts.MAX_FILE_BYTES + ALLOWANCE,
}


@bp.url_value_preprocessor
def allow_whole_files(endpoint, values):
    # Runs before CSRF protection reads the form, so the larger limit applies to that read too.
    if endpoint in LARGE_REQUESTS:
        request.max_content_length = LARGE_REQUESTS[endpoint]
        request.max_form_memory_size = LARGE_REQUESTS[endpoint]


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error):
    limit = drafts.MAX_UPLOAD_BYTES // (1024 * 1024)
    message = f"What you sent is larger than {limit} MB, so nothing was changed."
    if request.endpoint == "process_library.save_bpmn":
        return jsonify(saved=False, problems=[message]), 413
    draft_id = (request.view_args or {}).get("draft_id")
    back = url_for("process_library.draft", draft_id=draft_id) if draft_id else url_for("process_library.index")
    return render_template(
        "errors/too_large.html", message=message, back=back, anchor="", error_title=True, back_label="Go back",
        advice="A process model's files together are far smaller than this. Check you chose the right file, "
               "then upload it again."), 413


def _is_owner() -> bool:
    return current_user().role == OWNER


def _endpoint_url(endpoint: str, **values) -> str | None:
    """A link to another area's page, when that page exists in this app."""
    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None


# ---------------------------------------------------------------- the library and its versions


@bp.get("")
@roles(*READERS)
def index():
    with runtime().db.session() as session:
        entries = drafts.library_entries(session, with_drafts=_is_owner())
        return render_template("process_library/index.html", entries=entries, is_owner=_is_owner(),
                               errors={}, typed={})


@bp.post("/drafts")
@roles(OWNER)
def new_draft():
    """A draft of a model made in another editor: a .bpmn file or a zip of a processes directory."""
    chosen = request.files.get("file")
    process_id = text(request.form, "process_id", 100)
    with runtime().db.session() as session:
        try:
            if chosen is None or not chosen.filename:
                raise DraftRefused("Select a .bpmn or .zip file", field_name="file")
            draft = drafts.create_draft_from_upload(session, process_id, chosen.filename, chosen.stream,
                                                    current_user())
        except DraftRefused as refusal:
            session.rollback()
            errors = {refusal.field_name or "file": " ".join(refusal.problems)}
            page = render_template("process_library/index.html", entries=drafts.library_entries(
                session, with_drafts=True), is_owner=True, errors=errors, typed={"process_id": process_id},
                error_title=True)
            return page, 400
        draft_id = draft.id
    flash("The draft is ready. Validate it, then deploy it when it has no problems.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


def _version_or_404(session, process_id: str, number: int):
    version = drafts.find_version(session, process_id, number)
    if version is None:
        abort(404)
    return version


@bp.get("/<process_id>/versions/<int:number>")
@roles(*READERS)
def version(process_id: str, number: int):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        current = drafts.current_number(session, process_id)
        files = found.bpmn_files
        shown = request.args.get("file") if request.args.get("file") in files else \
            drafts.main_file(process_id, files)
        counts = drafts.open_episodes_by_version(session, process_id)
        diff = None
        if current > 1:
            pair = {"from": number, "to": current} if number != current else {"from": number - 1, "to": number}
            diff = _endpoint_url("process_migrations.diff", process_id=process_id, **pair)
        return render_template(
            "process_library/version.html", version=found, current=current, shown=shown,
            deployed_by=drafts.deployed_by_name(session, found), open_episodes=counts.get(number, 0),
            tasks=drafts.user_tasks(files), forms=drafts.form_entries(files, found.forms),
            is_owner=_is_owner(), diff=diff, migrations=_migrations(process_id, number, current, counts))


def _migrations(process_id: str, number: int, current: int, counts: dict[int, int]) -> list[dict]:
    """Links to move open episodes: from this version to the current one, and from earlier ones to this."""
    if not _is_owner() or "process_migrations.plan" not in current_app.view_functions:
        return []
    moves = [(number, current)] if number != current else []
    moves += [(older, number) for older in sorted(counts) if older < number]
    return [{"from": source, "to": target, "count": counts[source],
             "url": url_for("process_migrations.plan", process_id=process_id, **{"from": source, "to": target})}
            for source, target in moves if counts.get(source)]


def _download(filename: str, content: bytes | str, mimetype: str) -> Response:
    response = Response(content, mimetype=mimetype)
    response.headers.update({
        "Content-Disposition": content_disposition(filename),
        # A file opened in the browser anyway can run nothing.
        "Content-Security-Policy": "sandbox; default-src 'none'"})
    return response


def _file_response(bpmn_files: dict, forms: dict, path: str) -> Response:
    found = drafts.file_of(bpmn_files, forms, path)
    if found is None:
        abort(404)
    name, content = found
    return _download(name, content, "application/xml" if name.endswith(".bpmn") else "application/json")


@bp.get("/<process_id>/versions/<int:number>/files/<path:path>")
@roles(*READERS)
def version_file(process_id: str, number: int, path: str):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        return _file_response(found.bpmn_files, found.forms, path)


@bp.get("/<process_id>/versions/<int:number>.zip")
@roles(*READERS)
def version_zip(process_id: str, number: int):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        return _download(f"{process_id}-v{number}.zip", drafts.zip_of(found.bpmn_files, found.forms),
                         "application/zip")


@bp.get("/<process_id>/versions/<int:number>/forms/<name>")
@roles(*READERS)
def version_form(process_id: str, number: int, name: str):
    """A deployed form as practitioners see it, beside its JSON."""
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        entry = drafts.form_entry(found.bpmn_files, found.forms, name)
        if entry is None or not entry.schema_present:
            abort(404)
        schema_text = found.forms[entry.schema_file]
        ui_text = found.forms.get(entry.ui_file or "", "")
        return render_template("process_library/version_form.html", version=found, entry=entry,
                               schema_text=schema_text, ui_text=ui_text,
                               preview=_preview(schema_text, ui_text))


@bp.post("/<process_id>/versions/<int:number>/draft")
@roles(OWNER)
def create_draft(process_id: str, number: int):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        draft_id = drafts.create_draft(session, found, current_user()).id
    flash(f"This draft is a copy of version {number}. Your changes are saved in the draft; episodes are not "
          f"affected until you deploy it.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


# ---------------------------------------------------------------- a draft


def _draft_or_404(session, draft_id: int, *, for_update: bool = False):
    draft = drafts.find_draft(session, draft_id, for_update=for_update)
    if draft is None:
        abort(404)
    return draft


def _draft_page(session, draft, *, problems: list[str] | None = None, errors: dict | None = None,
                typed: dict | None = None, status: int = 200):
    files = draft.bpmn_files
    shown = request.args.get("file") if request.args.get("file") in files else \
        drafts.main_file(draft.process_id, files)
    page = render_template(
        "process_library/draft.html", draft=draft, shown=shown, problems=problems, errors=errors or {},
        typed=typed or {}, current=drafts.current_number(session, draft.process_id),
        tasks=drafts.user_tasks(files), forms=drafts.form_entries(files, draft.forms),
        error_title=bool(errors))
    return page, status


@bp.get("/drafts/<int:draft_id>")
@roles(OWNER)
def draft(draft_id: int):
    with runtime().db.session() as session:
        found = session.get(ProcessDraft, draft_id)
        if found is not None and found.status == "deployed" and found.deployed_version:
            deployed = found.deployed_version
            flash(f"This draft was deployed as version {deployed.version}.", "important")
            return redirect(url_for("process_library.version", process_id=deployed.process_id,
                                    number=deployed.version))
        return _draft_page(session, _draft_or_404(session, draft_id))


@bp.post("/drafts/<int:draft_id>/bpmn")
@roles(OWNER)
def save_bpmn(draft_id: int):
    """The modeler's Save: JSON in ({file, xml, revision}), JSON out with the validation result."""
    posted = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(posted, dict):
        posted = {}
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=True)
        try:
            drafts.save_bpmn(session, found, current_user(), str(posted.get("file") or ""),
                             str(posted.get("xml") or ""), posted.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            return jsonify(saved=False, problems=refusal.problems, revision=found.revision), refusal.status
    # Checked after the commit: parsing takes a moment, and nobody need wait on the draft meanwhile.
    return jsonify(saved=True, revision=found.revision, problems=drafts.problems_of(found))


@bp.post("/drafts/<int:draft_id>/validate")
@roles(OWNER)
def validate(draft_id: int):
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id)
    problems = drafts.problems_of(found)  # outside the transaction: parsing takes a moment
    if request.accept_mimetypes.best == "application/json":
        return jsonify(problems=problems, revision=found.revision)
    with runtime().db.session() as session:
        return _draft_page(session, _draft_or_404(session, draft_id), problems=problems)


@bp.post("/drafts/<int:draft_id>/deploy")
@roles(OWNER)
def deploy(draft_id: int):
    note = text(request.form, "change_note", drafts.MAX_NOTE)
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=True)
        try:
            deployed = drafts.deploy_draft(session, found, current_user(), note, request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            found = _draft_or_404(session, draft_id)
            if refusal.field_name == "problems":
                errors = {"problems": "This draft has problems, so nothing was deployed: fix them and deploy again"}
                return _draft_page(session, found, problems=refusal.problems, errors=errors,
                                   typed={"change_note": note}, status=400)
            errors = {refusal.field_name or "deploy": " ".join(refusal.problems)}
            return _draft_page(session, found, errors=errors, typed={"change_note": note}, status=refusal.status)
        process_id, number = deployed.process_id, deployed.version
    flash(f"Version {number} is deployed: new episodes start on it. Open episodes stay on their version.",
          "success")
    return redirect(url_for("process_library.version", process_id=process_id, number=number), 303)


@bp.post("/drafts/<int:draft_id>/discard")
@roles(OWNER)
def discard(draft_id: int):
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=True)
        drafts.discard(session, found, current_user())
    flash("The draft is discarded. Nothing was deployed.", "success")
    return redirect(url_for("process_library.index"), 303)


@bp.post("/drafts/<int:draft_id>/upload")
@roles(OWNER)
def upload(draft_id: int):
    chosen = request.files.get("file")
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=True)
        try:
            if chosen is None or not chosen.filename:
                raise DraftRefused("Select a .bpmn, .json or .zip file")
            changed = drafts.upload(session, found, current_user(), chosen.filename, chosen.stream,
                                    request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            found = _draft_or_404(session, draft_id)
            return _draft_page(session, found, errors={"file": " ".join(refusal.problems)}, status=refusal.status)
    flash(f"Uploaded: {', '.join(changed)}.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


@bp.get("/drafts/<int:draft_id>/files/<path:path>")
@roles(OWNER)
def draft_file(draft_id: int, path: str):
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id)
        return _file_response(found.bpmn_files, found.forms, path)


@bp.get("/drafts/<int:draft_id>.zip")
@roles(OWNER)
def draft_zip(draft_id: int):
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id)
        return _download(f"{found.process_id}-draft-{draft_id}.zip", drafts.zip_of(found.bpmn_files, found.forms),
                         "application/zip")


@bp.post("/drafts/<int:draft_id>/files/<path:path>/remove")
@roles(OWNER)
def remove_file(draft_id: int, path: str):
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=True)
        try:
            drafts.remove_file(session, found, current_user(), path, request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            if refusal.status == 404:
                abort(404)
            found = _draft_or_404(session, draft_id)
            return _draft_page(session, found, errors={"files": " ".join(refusal.problems)}, status=refusal.status)
    flash(f"{path} is removed from the draft.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


@bp.post("/drafts/<int:draft_id>/forms")
@roles(OWNER)
def add_form(draft_id: int):
    name = text(request.form, "name", 100)
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=True)
        try:
            added = drafts.add_form(session, found, current_user(), name, request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            found = _draft_or_404(session, draft_id)
            return _draft_page(session, found, errors={refusal.field_name or "name": " ".join(refusal.problems)},
                               typed={"name": name}, status=refusal.status)
    return redirect(url_for("process_library.form_editor", draft_id=draft_id, name=added), 303)


@bp.route("/drafts/<int:draft_id>/tasks/<task_id>/form", methods=["GET", "POST"])
@roles(OWNER)
def task_form(draft_id: int, task_id: str):
    """Which form a user task shows: the modeler has no panel for these properties."""
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=request.method == "POST")
        task = next((t for t in drafts.user_tasks(found.bpmn_files) if t.id == task_id), None)
        if task is None:
            abort(404)
        typed, errors = {"schema_file": task.schema_file or "", "ui_file": task.ui_file or ""}, {}
        if request.method == "POST":
            typed = {"schema_file": text(request.form, "schema_file", 100),
                     "ui_file": text(request.form, "ui_file", 100)}
            try:
                drafts.set_task_form(session, found, current_user(), task_id, typed["schema_file"],
                                     typed["ui_file"], request.form.get("revision"))
            except TaskFormRefused as refusal:
                session.rollback()
                errors = refusal.errors
            except DraftRefused as refusal:
                session.rollback()
                errors = {"schema_file": " ".join(refusal.problems)}
            else:
                flash(f"“{task.name}” now shows the form {typed['schema_file']}.", "success")
                return redirect(url_for("process_library.draft", draft_id=draft_id), 303)
            found = _draft_or_404(session, draft_id)
        page = render_template("process_library/task_form.html", draft=found, task=task, typed=typed,
                               errors=errors, form_names=sorted(found.forms), error_title=bool(errors))
        return page, 400 if errors else 200


# ---------------------------------------------------------------- the form editor


def _preview(schema_text: str, ui_text: str) -> dict:
    """What the form looks like to practitioners, built exactly as a task's form is; or why it cannot be."""
    problems = drafts.form_problems(schema_text, ui_text)
    if problems:
        return {"form": None, "problem": "The preview shows once the JSON is valid: " + " ".join(problems.values())}
    try:
        schema, ui = json.loads(schema_text), json.loads(ui_text) if ui_text.strip() else {}
        return {"form": schema_form.build_form(schema, ui, {}, None, None), "problem": None}
    except Exception as exc:  # a schema shape the renderer cannot draw: say so rather than fail the page
        return {"form": None, "problem": f"The form cannot be drawn: {type(exc).__name__}: {exc}"}


def _entry_or_404(found, name: str):
    entry = drafts.form_entry(found.bpmn_files, found.forms, name)
    if entry is None:
        abort(404)
    return entry


@bp.route("/drafts/<int:draft_id>/forms/<name>", methods=["GET", "POST"])
@roles(OWNER)
def form_editor(draft_id: int, name: str):
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id, for_update=request.method == "POST")
        entry = _entry_or_404(found, name)
        if name != entry.schema_file:
            return redirect(url_for("process_library.form_editor", draft_id=draft_id, name=entry.schema_file))
        schema_text = found.forms.get(entry.schema_file, drafts.NEW_SCHEMA)
        ui_text = found.forms.get(entry.ui_file or "", "")
        errors, status = {}, 200
        if request.method == "POST":
            schema_text, ui_text = request.form.get("schema", ""), request.form.get("ui", "")
            action = request.form.get("action")
            if action == "save":
                try:
                    errors = drafts.save_form(session, found, current_user(), entry, schema_text, ui_text,
                                              request.form.get("revision"))
                except DraftRefused as refusal:
                    session.rollback()
                    found = _draft_or_404(session, draft_id)
                    errors, status = {"schema": " ".join(refusal.problems)}, refusal.status
                if not errors:
                    flash(f"{entry.schema_file} is saved in the draft.", "success")
                    return redirect(url_for("process_library.form_editor", draft_id=draft_id, name=name), 303)
            elif action == "preview":
                errors = drafts.form_problems(schema_text, ui_text)
            else:
                abort(400)
            status = status if status != 200 else (400 if errors else 200)
        return render_template("process_library/form_editor.html", draft=found, entry=entry,
                               schema_text=schema_text, ui_text=ui_text, errors=errors,
                               preview=_preview(schema_text, ui_text), error_title=bool(errors)), status


@bp.post("/drafts/<int:draft_id>/forms/<name>/preview")
@roles(OWNER)
def form_preview(draft_id: int, name: str):
    """The live preview: the same fragment the editor page shows, for the text as typed so far."""
    with runtime().db.session() as session:
        found = _draft_or_404(session, draft_id)
        _entry_or_404(found, name)
    preview = _preview(request.form.get("schema", ""), request.form.get("ui", ""))
    return render_template("process_library/_form_preview.html", preview=preview)
