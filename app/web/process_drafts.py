"""A draft's pages: the modeler, validation, files, forms and the form editor (routes of the
process library's blueprint). Only process owners reach them; administrators never see drafts."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from app.models import ProcessDraft
from app.policy import process_library as library_policy
from app.services import draft_files, draft_review, model_files
from app.services import process_drafts as drafts
from app.services import process_library as processes
from app.services.process_drafts import DraftRefused, TaskFormRefused
from app.web import runtime
from app.web.access import current_user, roles
from app.web.form_input import text
from app.web.process_library import OWNER, as_download, bp, file_response, preview_of


# ---------------------------------------------------------------- a draft


def draft_or_404(session, draft_id: int, *, for_update: bool = False):
    draft = drafts.find_draft(session, draft_id, for_update=for_update)
    if draft is None:
        abort(404)
    return draft


def draft_page(session, draft, *, problems: list[str] | None = None, errors: dict | None = None,
                typed: dict | None = None, status: int = 200):
    files = draft.bpmn_files
    shown = request.args.get("file") if request.args.get("file") in files else \
        model_files.main_file(draft.process_id, files)
    page = render_template(
        "process_library/draft.html", draft=draft, shown=shown, problems=problems, errors=errors or {},
        typed=typed or {}, current=processes.current_number(session, draft.process_id),
        tasks=model_files.user_tasks(files), forms=model_files.form_entries(files, draft.forms),
        self_review=library_policy.review_refusal(draft, current_user()), error_title=bool(errors))
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
        return draft_page(session, draft_or_404(session, draft_id))


@bp.post("/drafts/<int:draft_id>/bpmn")
@roles(OWNER)
def save_bpmn(draft_id: int):
    """The modeler's Save: JSON in ({file, xml, revision}), JSON out with the validation result."""
    posted = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(posted, dict):
        posted = {}
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        under_review = found.review_status in ("submitted", "approved")
        try:
            drafts.save_bpmn(session, found, current_user(), str(posted.get("file") or ""),
                             str(posted.get("xml") or ""), posted.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            return jsonify(saved=False, problems=refusal.problems, revision=found.revision), refusal.status
        withdrawn = under_review and found.review_status == "editing"
    # Checked after the commit: parsing takes a moment, and nobody need wait on the draft meanwhile.
    return jsonify(saved=True, revision=found.revision, problems=drafts.problems_of(found), withdrawn=withdrawn)


@bp.post("/drafts/<int:draft_id>/validate")
@roles(OWNER)
def validate(draft_id: int):
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id)
    problems = drafts.problems_of(found)  # outside the transaction: parsing takes a moment
    if request.accept_mimetypes.best == "application/json":
        return jsonify(problems=problems, revision=found.revision)
    with runtime().db.session() as session:
        return draft_page(session, draft_or_404(session, draft_id), problems=problems)


@bp.post("/drafts/<int:draft_id>/discard")
@roles(OWNER)
def discard(draft_id: int):
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        drafts.discard(session, found, current_user())
    flash("The draft is discarded. Nothing was deployed.", "success")
    return redirect(url_for("process_library.index"), 303)


@bp.post("/drafts/<int:draft_id>/upload")
@roles(OWNER)
def upload(draft_id: int):
    chosen = request.files.get("file")
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        try:
            if chosen is None or not chosen.filename:
                raise DraftRefused("Select a .bpmn, .json or .zip file")
            changed = drafts.upload(session, found, current_user(), chosen.filename, chosen.stream,
                                    request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            found = draft_or_404(session, draft_id)
            return draft_page(session, found, errors={"file": " ".join(refusal.problems)}, status=refusal.status)
    flash(f"Uploaded: {', '.join(changed)}.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


@bp.get("/drafts/<int:draft_id>/files/<path:path>")
@roles(OWNER)
def draft_file(draft_id: int, path: str):
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id)
        return file_response(found.bpmn_files, found.forms, path)


@bp.get("/drafts/<int:draft_id>.zip")
@roles(OWNER)
def draft_zip(draft_id: int):
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id)
        archive = draft_files.zip_of(found.bpmn_files, found.forms)
        return as_download(f"{found.process_id}-draft-{draft_id}.zip", archive, "application/zip")


@bp.post("/drafts/<int:draft_id>/files/<path:path>/remove")
@roles(OWNER)
def remove_file(draft_id: int, path: str):
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        try:
            drafts.remove_file(session, found, current_user(), path, request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            if refusal.status == 404:
                abort(404)
            found = draft_or_404(session, draft_id)
            return draft_page(session, found, errors={"files": " ".join(refusal.problems)}, status=refusal.status)
    flash(f"{path} is removed from the draft.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


@bp.post("/drafts/<int:draft_id>/forms")
@roles(OWNER)
def add_form(draft_id: int):
    name = text(request.form, "name", 100)
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        try:
            added = drafts.add_form(session, found, current_user(), name, request.form.get("revision"))
        except DraftRefused as refusal:
            session.rollback()
            found = draft_or_404(session, draft_id)
            return draft_page(session, found, errors={refusal.field_name or "name": " ".join(refusal.problems)},
                               typed={"name": name}, status=refusal.status)
    return redirect(url_for("process_library.form_editor", draft_id=draft_id, name=added), 303)


@bp.route("/drafts/<int:draft_id>/tasks/<task_id>/form", methods=["GET", "POST"])
@roles(OWNER)
def task_form(draft_id: int, task_id: str):
    """Which form a user task shows: the modeler has no panel for these properties."""
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=request.method == "POST")
        task = next((t for t in model_files.user_tasks(found.bpmn_files) if t.id == task_id), None)
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
            found = draft_or_404(session, draft_id)
        page = render_template("process_library/task_form.html", draft=found, task=task, typed=typed,
                               errors=errors, form_names=sorted(found.forms), error_title=bool(errors))
        return page, 400 if errors else 200


def _entry_or_404(found, name: str):
    entry = model_files.form_entry(found.bpmn_files, found.forms, name)
    if entry is None:
        abort(404)
    return entry


@bp.route("/drafts/<int:draft_id>/forms/<name>", methods=["GET", "POST"])
@roles(OWNER)
def form_editor(draft_id: int, name: str):
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=request.method == "POST")
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
                    found = draft_or_404(session, draft_id)
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
                               preview=preview_of(schema_text, ui_text), error_title=bool(errors)), status


@bp.post("/drafts/<int:draft_id>/forms/<name>/preview")
@roles(OWNER)
def form_preview(draft_id: int, name: str):
    """The live preview: the same fragment the editor page shows, for the text as typed so far."""
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id)
        _entry_or_404(found, name)
    preview = preview_of(request.form.get("schema", ""), request.form.get("ui", ""))
    return render_template("process_library/_form_preview.html", preview=preview)
