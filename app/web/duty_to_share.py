"""The duty to share: recording a decision to share information without consent (or not to), its
approval by a second administrator, and what its recipient may read until it expires."""
from __future__ import annotations

import logging
from datetime import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app import attachments
from app.services import share_decisions as decisions
from app.services import shared_records as shared
from app.services.share_decisions import NotFound
from app.uk_time import from_uk_time
from app.web import runtime
from app.web.access import current_user, roles, signed_in
from app.web.attachments import download_response
from app.web.form_input import date_parts, parse_date
from app.web.schema_form import summary

bp = Blueprint("duty_to_share", __name__)
log = logging.getLogger(__name__)
FIELDS = ["decision", "recipient_kind", "recipient_email", "recipient_organisation", "records", "purpose",
          "detriment_reasoning", "expires_at", "tell_family", "family_email", "not_telling_reason",
          "not_sharing_reason"]
STATUS_LABELS = {"awaiting_approval": "Waiting for approval", "granted": "Shared", "rejected": "Rejected",
                 "expired": "Access ended", "not_shared": "Decided not to share"}


@bp.get("/episodes/<int:episode_id>/share-decisions")
@signed_in
def episode_decisions(episode_id: int):
    try:
        episode, rows = decisions.for_episode(runtime(), episode_id, current_user())
    except NotFound:
        abort(404)
    return render_template("duty_to_share/episode.html", episode=episode, decisions=rows, labels=STATUS_LABELS)


def _form_page(episode_id: int, outcome: decisions.Outcome | None = None, expires: dict | None = None,
               status: int = 200):
    try:
        episode, records, organisations = decisions.ask_page(runtime(), episode_id, current_user())
    except NotFound:
        abort(404)
    outcome = outcome or decisions.Outcome({"records": []})
    return render_template("duty_to_share/new.html", episode=episode, records=records, organisations=organisations,
                           outcome=outcome, typed=outcome.typed, errors=outcome.errors, expires=expires or {},
                           max_days=decisions.MAX_DAYS, order=FIELDS, error_title=bool(outcome.errors)), status


@bp.get("/episodes/<int:episode_id>/share-decisions/new")
@signed_in
def new(episode_id: int):
    return _form_page(episode_id)


@bp.post("/episodes/<int:episode_id>/share-decisions/new")
@signed_in
def record(episode_id: int):
    expires = date_parts(request.form, "expires_at")
    day, error = parse_date(expires, "the date the access ends")
    form = {**request.form, "records": request.form.getlist("records"),
            "expires_at": from_uk_time(day, time(23, 59)) if day else None}
    try:
        outcome = decisions.record(runtime(), episode_id, current_user(), form,
                                   {"expires_at": error} if error else None)
    except NotFound:
        abort(404)
    if outcome.errors:
        return _form_page(episode_id, outcome, expires, status=400)
    flash("The decision not to share was recorded." if outcome.typed["decision"] == "not_share" else
          "The decision to share was recorded. Another administrator of the authority must approve it before "
          "anything is shared.", "success")
    return redirect(url_for("duty_to_share.episode_decisions", episode_id=episode_id))


@bp.get("/share-decisions")
@roles("administrator")
def approvals():
    return render_template("duty_to_share/approvals.html", decisions=decisions.awaiting_approval(runtime(),
                                                                                                 current_user()))


def _decision_page(decision_id: int, outcome: decisions.Outcome | None = None, status: int = 200):
    try:
        row, titles, refusal = decisions.approval_page(runtime(), decision_id, current_user())
    except NotFound:
        abort(404)
    outcome = outcome or decisions.Outcome({})
    return render_template("duty_to_share/decision.html", decision=row, titles=titles, refusal=refusal,
                           typed=outcome.typed, errors=outcome.errors, labels=STATUS_LABELS,
                           error_title=bool(outcome.errors)), status


@bp.get("/share-decisions/<int:decision_id>")
@signed_in
def decision(decision_id: int):
    return _decision_page(decision_id)


@bp.post("/share-decisions/<int:decision_id>")
@signed_in
def decide(decision_id: int):
    try:
        outcome = decisions.decide(runtime(), decision_id, current_user(), request.form)
    except NotFound:
        abort(404)
    if outcome.errors:
        return _decision_page(decision_id, outcome, status=400)
    flash("The decision to share was approved: the recipient can read the records until the expiry date."
          if outcome.typed["decision"] == "approve" else "The decision to share was rejected: nothing was shared.",
          "success")
    return redirect(url_for("duty_to_share.approvals"))


@bp.get("/shared")
@signed_in
def shared_with_me():
    return render_template("duty_to_share/shared_with_me.html", shares=shared.shared_with(runtime(), current_user()))


def _ended(ended: shared.ShareEnded):
    return render_template("duty_to_share/ended.html", decision=ended.decision, why=ended.why), 403


@bp.get("/shared/<int:decision_id>")
@signed_in
def share(decision_id: int):
    try:
        row, records = shared.open_share(runtime(), decision_id, current_user())
    except NotFound:
        abort(404)
    except shared.ShareEnded as ended:
        return _ended(ended)
    return render_template("duty_to_share/shared.html", decision=row, records=records)


@bp.get("/shared/<int:decision_id>/records/<kind>/<ident>")
@signed_in
def shared_record(decision_id: int, kind: str, ident: str):
    try:
        row, title, rows = shared.read_record(runtime(), decision_id, f"{kind}:{ident}"[:80], current_user(), summary)
    except NotFound:
        abort(404)
    except shared.ShareEnded as ended:
        return _ended(ended)
    return render_template("duty_to_share/record.html", decision=row, title=title, rows=rows)


@bp.get("/shared/<int:decision_id>/attachments/<int:attachment_id>")
@signed_in
def shared_attachment(decision_id: int, attachment_id: int):
    try:
        found = shared.download(runtime(), decision_id, attachment_id, current_user())
    except attachments.AttachmentMissing:
        log.error("shared attachment %s is missing from the store", attachment_id)
        abort(404)
    except NotFound:
        abort(404)
    except shared.ShareEnded as ended:
        return _ended(ended)
    return download_response(found)
