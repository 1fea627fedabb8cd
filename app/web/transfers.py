"""Episode export and import between local authorities, and the subject-access export. Asking for,
releasing and declining a transfer: app/web/transfer_requests.py."""
from __future__ import annotations

import json

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from app import policy
from app.models import Child
from app.services import episode_transfer as service
from app.web import runtime
from app.web.access import current_user, deny, roles, signed_in

bp = Blueprint("transfers", __name__)
IMPORT_LIMIT = 20 * 1024 * 1024  # an episode with many reviews outgrows the app's 2 MB form limit
FILE_FIELD, LEAD_FIELD = "document", service.LEAD_FIELD


@bp.url_value_preprocessor
def larger_upload_for_import(endpoint, values):
    # Runs before CSRF protection reads the form, so the larger limit applies to that read too.
    if endpoint == "transfers.import_episode":
        request.max_content_length = IMPORT_LIMIT


def _download(document: dict, filename: str) -> Response:
    body = json.dumps(document, indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@bp.get("/episodes/<int:episode_id>/export.json")
@signed_in
def export_episode(episode_id: int):
    user = current_user()
    with runtime().db.session() as session:
        episode = policy.visible_episode(session, user, episode_id)
        if episode is None or not policy.may(session, user, "export", episode):
            deny(session, f"export episode {episode_id}")
        document = service.export_episode(session, episode, user)
        reference = episode.reference
    return _download(document, f"CAF-{reference}-export.json")


@bp.route("/transfers/import", methods=["GET", "POST"])
@roles("administrator")
def import_episode():
    errors, problems = {}, []
    email = (request.form.get(LEAD_FIELD) or "").strip()
    if request.method == "POST":
        upload = request.files.get(FILE_FIELD)
        if upload is None or not upload.filename:
            errors[FILE_FIELD] = "Choose the episode export file (.json) to import"
        if not email:
            errors[LEAD_FIELD] = "Enter the email address of the lead professional in your authority"
        if not errors:
            try:
                episode = service.import_episode(runtime(), upload.read(), current_user().id, email)
            except service.TransferRefused as refusal:
                errors[refusal.field], problems = refusal.message, refusal.problems
            else:
                flash(f"Episode {episode.transferred_from} has moved to your authority as {episode.reference}, "
                      f"and {email} is its lead professional.", "success")
                return redirect(url_for("episodes.show", episode_id=episode.id))
    page = render_template("transfers/import.html", errors=errors, problems=problems, email=email,
                           limit_mb=IMPORT_LIMIT // (1024 * 1024), error_title=bool(errors))
    return page, 400 if errors else 200


@bp.get("/children/<int:child_id>/subject-access.json")
@roles("administrator")
def subject_access(child_id: int):
    user = current_user()
    with runtime().db.session() as session:
        child = session.get(Child, child_id)
        if child is None or not policy.may_see_child(session, user, child):
            deny(session, f"subject access for child {child_id}")
        document = service.subject_access(session, child, user)
    return _download(document, f"subject-access-child-{child_id}.json")
