"""Evidence files on an episode: the list, the upload form, and downloads that are never shown inline."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import wrap_file

from sqlalchemy import select

from app import attachments, policy
from app.audit_lists import episodes_shown
from app.models import Episode, HumanTask, ServiceRequest
from app.service_requests import attachment_key
from app.web import runtime
from app.web.access import current_user, episode_or_404, signed_in

bp = Blueprint("attachments", __name__, url_prefix="/episodes")
log = logging.getLogger(__name__)
FILE_FIELD = "file"
# Room in the request for the CSRF token and the multipart framing around the file itself.
FORM_ALLOWANCE = 64 * 1024


@bp.url_value_preprocessor
def larger_upload_for_attachments(endpoint, values):
    # Runs before CSRF protection reads the form, so the larger limit applies to that read too.
    if endpoint == "attachments.upload":
        request.max_content_length = runtime().config.attachment_max_bytes + FORM_ALLOWANCE


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error):
    """Raised while the form is read, before anyone is known: say only what the limit is."""
    limit = attachments.limit_label(runtime().config)
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
