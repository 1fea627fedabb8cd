"""Two people for every deploy (routes of the process library's blueprint): a process owner submits a
draft with a change note, a different process owner reviews what changed and approves or rejects it,
and only an approved draft deploys. Administrators are refused every one of these pages.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.policy import process_library as library_policy
from app.services import draft_review as review
from app.services import model_files
from app.services.process_drafts import DraftRefused
from app.web import runtime
from app.web.access import current_user, roles
from app.web.form_input import text
from app.web.process_drafts import draft_or_404, draft_page
from app.web.process_library import OWNER, bp


def _undo(session, refusal: DraftRefused) -> None:
    # A refusal that was itself audited keeps its audit row; anything else leaves no trace.
    if refusal.audited:
        session.commit()
    else:
        session.rollback()


def _refused_draft_page(session, draft_id: int, refusal: DraftRefused, typed: dict):
    _undo(session, refusal)
    found = draft_or_404(session, draft_id)
    if refusal.field_name == "problems":
        errors = {"problems": "This draft has problems, so it was not submitted: fix them and submit it again"}
        return draft_page(session, found, problems=refusal.problems, errors=errors, typed=typed, status=400)
    errors = {refusal.field_name or "submit": " ".join(refusal.problems)}
    return draft_page(session, found, errors=errors, typed=typed, status=refusal.status)


@bp.post("/drafts/<int:draft_id>/submit")
@roles(OWNER)
def submit(draft_id: int):
    note = text(request.form, "change_note", review.MAX_NOTE)
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        try:
            review.submit(session, found, current_user(), note, request.form.get("revision"))
        except DraftRefused as refusal:
            return _refused_draft_page(session, draft_id, refusal, {"change_note": note})
    flash("The draft is waiting for review. Another process owner must approve it before it can be deployed; "
          "changing it now takes it back to editing.", "success")
    return redirect(url_for("process_library.draft", draft_id=draft_id), 303)


def _review_page(session, draft, *, errors: dict | None = None, typed: dict | None = None, status: int = 200):
    against_current = request.args.get("against") == "current"
    changes = review.changes_of(session, draft, against_current=against_current)
    main = model_files.main_file(draft.process_id, draft.bpmn_files)
    page = render_template(
        "process_library/review.html", draft=draft, changes=changes, against_current=against_current,
        self_review=library_policy.review_refusal(draft, current_user()), errors=errors or {}, typed=typed or {},
        diagram_url=url_for("process_library.draft_file", draft_id=draft.id, path=main) if main else None,
        error_title=bool(errors))
    return page, status


@bp.get("/drafts/<int:draft_id>/review")
@roles(OWNER)
def review_draft(draft_id: int):
    """What the draft changes, on the same comparison as between versions, and the decision."""
    with runtime().db.session() as session:
        return _review_page(session, draft_or_404(session, draft_id))


def _decide(draft_id: int, decision: str):
    typed = {"comment": text(request.form, "comment", review.MAX_NOTE),
             "reason": text(request.form, "reason", review.MAX_NOTE)}
    with runtime().db.session() as session:
        found = draft_or_404(session, draft_id, for_update=True)
        try:
            if decision == "approve":
                review.approve(session, found, current_user(), request.form.get("content_hash"), typed["comment"])
            else:
                review.reject(session, found, current_user(), request.form.get("content_hash"), typed["reason"])
        except DraftRefused as refusal:
            _undo(session, refusal)
            found = draft_or_404(session, draft_id)
            return _review_page(session, found, errors={refusal.field_name or "decision": " ".join(refusal.problems)},
                                typed=typed, status=refusal.status)
        submitter = found.submitted_by.full_name if found.submitted_by else "the submitter"
    if decision == "approve":
        flash(f"You approved draft {draft_id}. {submitter} or another process owner can now deploy it.", "success")
    else:
        flash(f"You rejected draft {draft_id}. {submitter} can see your reason on the draft.", "success")
    return redirect(url_for("process_library.index"), 303)


@bp.post("/drafts/<int:draft_id>/approve")
@roles(OWNER)
def approve(draft_id: int):
    return _decide(draft_id, "approve")


@bp.post("/drafts/<int:draft_id>/reject")
@roles(OWNER)
def reject(draft_id: int):
    return _decide(draft_id, "reject")


@bp.post("/drafts/<int:draft_id>/deploy")
@roles(OWNER)
def deploy(draft_id: int):
    with runtime().db.session() as session:
        # Locked: the content compared with the approved hash is the content that deploys.
        found = draft_or_404(session, draft_id, for_update=True)
        try:
            deployed = review.deploy(session, found, current_user(), request.form.get("revision"))
        except DraftRefused as refusal:
            if refusal.field_name == "problems":
                session.rollback()
                errors = {"deploy": "This draft has problems, so nothing was deployed: fix them and submit it again"}
                return draft_page(session, draft_or_404(session, draft_id), problems=refusal.problems,
                                   errors=errors, status=400)
            return _refused_draft_page(session, draft_id, refusal, {})
        process_id, number = deployed.process_id, deployed.version
    flash(f"Version {number} is deployed: new episodes start on it. Open episodes stay on their version.",
          "success")
    return redirect(url_for("process_library.version", process_id=process_id, number=number), 303)
