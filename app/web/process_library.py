"""The process library: versions of each process model, and drafts that process owners edit, submit
for review, approve and deploy.

Process owners create, edit, validate, submit, review and deploy drafts. Administrators may read
the library and its versions but change nothing and never see drafts. Pages work without JavaScript
except the modeler and the live form preview; a BPMN file made in another editor can be uploaded
instead. The drafts' pages (`process_drafts`) and their review (`draft_review`) are routes of this
blueprint, in modules of their own.
"""
from __future__ import annotations

import json

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import RequestEntityTooLarge

from app.attachments import content_disposition
from app.policy import process_library as library_policy
from app.services import draft_files, model_files
from app.services import process_drafts as drafts
from app.services import process_library as processes
from app.services.process_drafts import DraftRefused
from app.web import runtime, schema_form
from app.web.access import current_user, roles
from app.web.form_input import text

bp = Blueprint("process_library", __name__, url_prefix="/processes")
READERS, OWNER = library_policy.LIBRARY_READERS, library_policy.OWNER
# Room in a request for the CSRF token, the form's other fields and the multipart framing.
ALLOWANCE = 64 * 1024
# Endpoints that take whole files, and how much each may receive.
LARGE_REQUESTS = {
    "process_library.upload": draft_files.MAX_UPLOAD_BYTES + ALLOWANCE,
    "process_library.new_draft": draft_files.MAX_UPLOAD_BYTES + ALLOWANCE,
    # JSON escaping can double the size of XML.
    "process_library.save_bpmn": 2 * draft_files.MAX_FILE_BYTES + ALLOWANCE,
    "process_library.form_editor": 4 * draft_files.MAX_FILE_BYTES + ALLOWANCE,
    "process_library.form_preview": 4 * draft_files.MAX_FILE_BYTES + ALLOWANCE,
}


@bp.url_value_preprocessor
def allow_whole_files(endpoint, values):
    # Runs before CSRF protection reads the form, so the larger limit applies to that read too.
    if endpoint in LARGE_REQUESTS:
        request.max_content_length = LARGE_REQUESTS[endpoint]
        request.max_form_memory_size = LARGE_REQUESTS[endpoint]


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error):
    limit = draft_files.MAX_UPLOAD_BYTES // (1024 * 1024)
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
    return library_policy.may_change_library(current_user())


def _endpoint_url(endpoint: str, **values) -> str | None:
    """A link to another area's page, when that page exists in this app."""
    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None


# ---------------------------------------------------------------- the library and its versions


def _index_page(session, *, errors: dict, typed: dict, status: int = 200):
    owner = _is_owner()
    page = render_template("process_library/index.html", entries=processes.library_entries(session, with_drafts=owner),
                           waiting=processes.waiting_for_review(session) if owner else [], is_owner=owner,
                           errors=errors, typed=typed, error_title=bool(errors))
    return page, status


@bp.get("")
@roles(*READERS)
def index():
    with runtime().db.session() as session:
        return _index_page(session, errors={}, typed={})


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
            return _index_page(session, errors=errors, typed={"process_id": process_id}, status=400)
        draft_id = draft.id
    flash("The draft is ready. Validate it, then submit it for review when it has no problems.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


def _version_or_404(session, process_id: str, number: int):
    version = processes.find_version(session, process_id, number)
    if version is None:
        abort(404)
    return version


@bp.get("/<process_id>/versions/<int:number>")
@roles(*READERS)
def version(process_id: str, number: int):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        current = processes.current_number(session, process_id)
        files = found.bpmn_files
        shown = request.args.get("file") if request.args.get("file") in files else \
            model_files.main_file(process_id, files)
        counts = processes.open_episodes_by_version(session, process_id)
        diff = None
        if current > 1:
            pair = {"from": number, "to": current} if number != current else {"from": number - 1, "to": number}
            diff = _endpoint_url("process_migrations.diff", process_id=process_id, **pair)
        return render_template(
            "process_library/version.html", version=found, current=current, shown=shown,
            deployed_by=processes.deployed_by_name(session, found), open_episodes=counts.get(number, 0),
            tasks=model_files.user_tasks(files), forms=model_files.form_entries(files, found.forms),
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


def as_download(filename: str, content: bytes | str, mimetype: str) -> Response:
    response = Response(content, mimetype=mimetype)
    response.headers.update({
        "Content-Disposition": content_disposition(filename),
        # A file opened in the browser anyway can run nothing.
        "Content-Security-Policy": "sandbox; default-src 'none'"})
    return response


def file_response(bpmn_files: dict, forms: dict, path: str) -> Response:
    found = model_files.file_of(bpmn_files, forms, path)
    if found is None:
        abort(404)
    name, content = found
    return as_download(name, content, "application/xml" if name.endswith(".bpmn") else "application/json")


@bp.get("/<process_id>/versions/<int:number>/files/<path:path>")
@roles(*READERS)
def version_file(process_id: str, number: int, path: str):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        return file_response(found.bpmn_files, found.forms, path)


@bp.get("/<process_id>/versions/<int:number>.zip")
@roles(*READERS)
def version_zip(process_id: str, number: int):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        return as_download(f"{process_id}-v{number}.zip", draft_files.zip_of(found.bpmn_files, found.forms),
                           "application/zip")


@bp.get("/<process_id>/versions/<int:number>/forms/<name>")
@roles(*READERS)
def version_form(process_id: str, number: int, name: str):
    """A deployed form as practitioners see it, beside its JSON."""
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        entry = model_files.form_entry(found.bpmn_files, found.forms, name)
        if entry is None or not entry.schema_present:
            abort(404)
        schema_text = found.forms[entry.schema_file]
        ui_text = found.forms.get(entry.ui_file or "", "")
        return render_template("process_library/version_form.html", version=found, entry=entry,
                               schema_text=schema_text, ui_text=ui_text,
                               preview=preview_of(schema_text, ui_text))


@bp.post("/<process_id>/versions/<int:number>/draft")
@roles(OWNER)
def create_draft(process_id: str, number: int):
    with runtime().db.session() as session:
        found = _version_or_404(session, process_id, number)
        draft_id = drafts.create_draft(session, found, current_user()).id
    flash(f"This draft is a copy of version {number}. Your changes are saved in the draft; episodes are not "
          f"affected until it is approved and deployed.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)




# ---------------------------------------------------------------- the form editor


def preview_of(schema_text: str, ui_text: str) -> dict:
    """What the form looks like to practitioners, built exactly as a task's form is; or why it cannot be."""
    problems = drafts.form_problems(schema_text, ui_text)
    if problems:
        return {"form": None, "problem": "The preview shows once the JSON is valid: " + " ".join(problems.values())}
    try:
        schema, ui = json.loads(schema_text), json.loads(ui_text) if ui_text.strip() else {}
        return {"form": schema_form.build_form(schema, ui, {}, None, None), "problem": None}
    except Exception as exc:  # a schema shape the renderer cannot draw: say so rather than fail the page
        return {"form": None, "problem": f"The form cannot be drawn: {type(exc).__name__}: {exc}"}


# The drafts' pages and their review are routes of this blueprint, kept in modules of their own.
from app.web import draft_review, process_drafts  # noqa: E402,F401
