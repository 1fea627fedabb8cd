"""Evidence files on an episode: the list, the upload form, and downloads that are never shown inline.

A service request's evidence is attached inside the request form itself (`attach_in_form`): the
form's "Attach the file" button posts the whole form here, so what was typed is saved as a draft and
the form comes back with the file listed under it."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import wrap_file

from sqlalchemy import select

from app import attachments, policy
from app.audit_lists import episodes_shown
from app.engine.errors import EpisodeNotOpen, NotPermitted, TaskAlreadyDone, TaskNotFound, TaskNotReady
from app.forms.posted import EVIDENCE_FIELD
from app.models import Attachment, Episode, HumanTask, ServiceRequest
from app.service_requests import attachment_key
from app.services import task_forms
from app.web import draft_saved, request_db, runtime, schema_form
from app.web.access import current_user, deny, episode_or_404, signed_in

bp = Blueprint("attachments", __name__, url_prefix="/episodes")
log = logging.getLogger(__name__)
FILE_FIELD = "file"
# Room in the request for the CSRF token and the multipart framing around the file itself.
FORM_ALLOWANCE = 64 * 1024


@bp.url_value_preprocessor
def larger_upload_for_attachments(endpoint, values):
    # Runs before CSRF protection reads the form, so the larger limit applies to that read too.
    if endpoint in ("attachments.upload", "attachments.attach_in_form"):
        request.max_content_length = runtime().config.attachment_max_bytes + FORM_ALLOWANCE


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error):
    """Raised while the form is read, before anyone is known: say only what the limit is."""
    limit = attachments.limit_label(runtime().config)
    if request.endpoint == "attachments.attach_in_form":  # the request form, whose answers came with the file
        return render_template(
            "errors/too_large.html", error_title=True, anchor="#" + EVIDENCE_FIELD,
            back=url_for("tasks.form", task_id=(request.view_args or {}).get("task_id")),
            message=f"The selected file must be {limit} or smaller", back_label="Go back to the request",
            advice=f"Nothing was attached, and what you typed since you last saved the request was not saved. "
                   f"Choose a file of {limit} or smaller, or split it into parts, and attach it again."), 413
    return render_template(
        "errors/too_large.html", error_title=True, back=request.path, anchor="#file",
        message=f"The selected file must be {limit} or smaller", back_label="Go back to the attachments",
        advice=f"Nothing was attached. Choose a file of {limit} or smaller, or split it into parts, "
               "and attach it again."), 413


def _episode_or_404(session, episode_id: int, asked_for: str) -> Episode:
    return episode_or_404(session, episode_id, f"{asked_for} of episode {episode_id}",
                          lambda episode: policy.may_attach(session, current_user(), episode))


def _attached_to(session, episode: Episode) -> ServiceRequest | None:
    """The request the files are evidence for, when the page was opened from one (else 404)."""
    key = request.values.get("attached_to") or ""
    if not key:
        return None
    number = key.removeprefix("service_request:")
    found = session.get(ServiceRequest, int(number)) if number.isdigit() else None
    if not policy.is_request_of(found, episode):
        abort(404)
    return found


def _page(session, episode: Episode, errors: dict | None = None, status: int = 200):
    for_request = _attached_to(session, episode)
    files = attachments.for_episode(session, episode)
    if for_request is not None:
        files = [a for a in files if a.attached_to == attachment_key(for_request)]
    episodes_shown(session, current_user().id, "attachments", [episode.id])
    return render_template("attachments/index.html", episode=episode, child=episode.child, for_request=for_request,
                           attachment_key=attachment_key(for_request) if for_request else None,
                           back_task=_request_task(session, for_request),
                           attachments=files, errors=errors or {},
                           kind_of=attachments.kind_of, size_label=attachments.size_label,
                           limit=attachments.limit_label(runtime().config), accepted=attachments.ACCEPTED,
                           error_title=bool(errors)), status


@bp.get("/<int:episode_id>/attachments")
@signed_in
def index(episode_id: int):
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id, "attachments")
        return _page(session, episode)


@bp.post("/<int:episode_id>/attachments")
@signed_in
def upload(episode_id: int):
    config = runtime().config
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id, "attach a file")
        chosen = request.files.get(FILE_FIELD)
        if chosen is None or not chosen.filename:
            return _page(session, episode, {FILE_FIELD: "Select a file to attach"}, 400)
        for_request = _attached_to(session, episode)
        try:
            stored = attachments.store(session, config, episode=episode, user=current_user(),
                                       filename=chosen.filename, stream=chosen.stream,
                                       attached_to=attachment_key(for_request) if for_request else None)
        except attachments.AttachmentRefused as refusal:
            return _page(session, episode, {FILE_FIELD: refusal.message}, 400)
        flash(f"{stored.filename} is attached.", "success")
        key = attachment_key(for_request) if for_request else None
    return redirect(url_for("attachments.index", episode_id=episode_id, attached_to=key), 303)


def _request_task(session, for_request: ServiceRequest | None) -> HumanTask | None:
    """The requester's form, to go back to after attaching evidence."""
    if for_request is None:
        return None
    return session.scalar(select(HumanTask).where(HumanTask.service_request_id == for_request.id,
                                                  HumanTask.name == "request_form", HumanTask.status == "ready"))


@bp.get("/<int:episode_id>/attachments/<int:attachment_id>")
@signed_in
def download(episode_id: int, attachment_id: int):
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id, f"attachment {attachment_id}")
        try:
            found = attachments.open_for_download(session, runtime().config, episode=episode,
                                                  attachment_id=attachment_id, user=current_user())
        except attachments.AttachmentMissing:
            log.error("attachment %s of episode %s is missing from the store", attachment_id, episode_id)
            found = None
        if found is None:
            abort(404)
    return download_response(found)


def download_response(found: attachments.Download) -> Response:
    """The file as a download, never shown inline."""
    response = Response(wrap_file(request.environ, found.file), direct_passthrough=True,
                        content_type=found.content_type)
    response.content_length = found.attachment.size
    response.headers.update({
        "Content-Disposition": attachments.content_disposition(found.attachment.filename),
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        # A file opened in the browser anyway can run nothing.
        "Content-Security-Policy": "sandbox; default-src 'none'"})
    return response


# ---------------------------------------------------------------- evidence inside the request form


@dataclass
class RequestEvidence:
    """What the request form shows of its evidence: the files so far and what may be attached."""
    files: list[Attachment]
    limit: str
    accepted: str = attachments.ACCEPTED
    field: str = EVIDENCE_FIELD

    @staticmethod
    def about(file: Attachment) -> str:
        """"PDF, 12 KB": what a file is, beside its name."""
        kind = attachments.kind_of(file.content_type)
        return f"{kind.short if kind else 'Unknown type'}, {attachments.size_label(file.size)}"


def request_evidence(session, task: HumanTask) -> RequestEvidence | None:
    """For the requester's form of a service request whose episode the user may attach files to."""
    if task.service_request_id is None or task.name != "request_form" \
            or not policy.may_attach(session, current_user(), task.episode):
        return None
    key = attachment_key(task.service_request_id)
    files = [a for a in attachments.for_episode(session, task.episode) if a.attached_to == key]
    return RequestEvidence(files=files, limit=attachments.limit_label(runtime().config))


@bp.post("/<int:episode_id>/requests/<int:task_id>/evidence")
@signed_in
def attach_in_form(episode_id: int, task_id: int):
    """Attach a file from the request form, keeping what was typed in it as a draft."""
    config = runtime().config
    with request_db.transaction() as session:
        opened = task_forms.open_task(session, current_user(), task_id)
        if opened is None:
            session.commit()  # keeps the refusal open_task audited
            abort(404)
        if opened.episode.id != episode_id or request_evidence(session, opened.task) is None:
            deny(session, f"evidence for task {task_id} of episode {episode_id}")
        schema, ui = opened.schema, opened.ui
        data, raw, _ = schema_form.parse_form(schema, ui, request.form)
        data = schema_form.carry_read_only(schema, ui, task_forms.prefill(session, schema, opened.episode,
                                                                        current_user()), data)
        if schema_form.unexpected_names(schema, ui, request.form):
            from app.web.tasks import _render  # the form page itself, with the problem on it

            problem = {"field": "", "message": "This form was sent with fields it does not have, so nothing was "
                                               "saved or attached. Check your answers and send it again."}
            return _render(session, opened, schema_form.build_form(schema, ui, data, [problem], raw), 400)
        try:  # with the episode and the task locked: no file is kept on a task its step would refuse
            task_forms.hold_for_work(session, current_user(), episode_id, task_id)
        except NotPermitted:
            deny(session, f"evidence for task {task_id} of episode {episode_id}")
        except (TaskAlreadyDone, TaskNotReady, EpisodeNotOpen) as exc:
            flash(f"Nothing was attached and your answers were not saved: {exc}.", "important")
            return redirect(url_for("episodes.show", episode_id=episode_id))
        chosen = request.files.get(EVIDENCE_FIELD)
        refused, filename = None, None
        try:
            stored = attachments.store(session, config, episode=opened.episode, user=current_user(),
                                       filename=chosen.filename if chosen else None,
                                       stream=chosen.stream if chosen else None,
                                       attached_to=attachment_key(opened.task.service_request_id))
            filename = stored.filename
        except attachments.AttachmentRefused as refusal:
            refused = refusal.message
    try:  # a step of its own, once the file is kept: what was typed is never lost to a refused file
        task_forms.save_draft(runtime().engine, current_user(), episode_id, task_id,
                              draft_saved.stamped({"data": data, "raw": raw}))
    except NotPermitted:
        with request_db.transaction() as session:
            deny(session, f"evidence for task {task_id} of episode {episode_id}")
    except (TaskAlreadyDone, TaskNotReady, TaskNotFound, EpisodeNotOpen) as exc:
        flash(f"Your answers were not saved: {exc}.", "important")
        return redirect(url_for("episodes.show", episode_id=episode_id))
    if refused is not None:
        from app.web.tasks import _render  # the form page itself, with the file's problem on it

        with request_db.transaction() as session:
            opened = task_forms.open_task(session, current_user(), task_id)
            form = schema_form.build_form(opened.schema, opened.ui, data, None, raw)
            return _render(session, opened, form, 400, attach_error=refused)
    flash(f"{filename} is attached to the request.", "success")
    return redirect(url_for("tasks.form", task_id=task_id, _anchor="attach-evidence"), 303)
