"""Asking for a child's episode, and releasing or declining that request, before any transfer file exists.

Until the sending side decides, the asking authority sees only what it typed: the pages never say
whether the details matched an episode. Who may do what: app/policy/transfers.py.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from app import audit, policy
from app.clock import now
from app.config import TransferKeyMissing
from app.models import TransferRequest
from app.services.transfers import export as export_service
from app.services.transfers import requests as service
from app.web import runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("transfer_requests", __name__, url_prefix="/transfers/requests")
# Service field -> the id the error summary links to (a date links to its day box).
_FIELD_IDS = {"date_of_birth": "date-of-birth-day", "decision": "decision", "decision_reason": "decision-reason"}


def _linked(errors: dict) -> dict:
    return {_FIELD_IDS.get(name, name): message for name, message in errors.items()}


def _listed(db, page: str, requests: list[TransferRequest], *, with_episodes: bool) -> None:
    """One audit row per list view. The asking side's row names no episode: whether its request
    matched one is not its to learn from the trail."""
    episodes = sorted({r.episode_id for r in requests if r.episode_id}) if with_episodes else []
    if requests:
        audit.record(db, "episodes_listed", actor_id=current_user().id,
                     episode_id=episodes[0] if len(episodes) == 1 else None, page=page, episodes=episodes,
                     transfer_requests=[r.id for r in requests])


@bp.get("/")
@roles("administrator", "practitioner")
def index():
    user = current_user()
    with runtime().db.session() as db:
        incoming = service.incoming(db, user)
        outgoing = service.outgoing(db, user) if policy.may_receive_transfers(user) else []
        _listed(db, "transfer_requests_to_decide", incoming, with_episodes=True)
        _listed(db, "transfer_requests_made", outgoing, with_episodes=False)
        return render_template("transfers/requests.html", incoming=incoming, outgoing=outgoing,
                               may_ask=policy.may_receive_transfers(user), moment=now())


@bp.route("/new", methods=["GET", "POST"])
@roles("administrator")
def new():
    user = current_user()
    errors, typed = {}, {"reference": "", "given_names": "", "family_name": "", "reason": "", "dob": None}
    if request.method == "POST":
        form = request.form
        typed = {"reference": text(form, "reference", 40), "given_names": text(form, "given_names", 200),
                 "family_name": text(form, "family_name", 200), "reason": text(form, "reason", 2000),
                 "dob": date_parts(form, "date_of_birth")}
        born, problem = parse_date(typed["dob"], "the child's date of birth", required=True, past=True)
        with runtime().db.session() as db:
            if not policy.may_receive_transfers(user):
                deny(db, "ask for a transfer", 403)
            try:
                made = service.request_transfer(db, user, typed["reference"], typed["given_names"],
                                                typed["family_name"], born, typed["reason"])
            except service.RequestProblems as problems:
                errors = _linked(problems.errors)
                db.rollback()
            else:
                made_id = made.id
        if problem:
            errors["date-of-birth-day"] = problem
        if not errors:
            flash("Your request has been sent. If the reference and the child's details match an open episode, "
                  "the authority that holds it will release it to you or decline, with a reason.", "success")
            return redirect(url_for("transfer_requests.show", request_id=made_id))
    page = render_template("transfers/request_new.html", errors=errors, typed=typed, error_title=bool(errors))
    return page, 400 if errors else 200


def _visible(db, request_id: int) -> TransferRequest:
    found = db.get(TransferRequest, request_id)
    if found is None or not policy.may_see_transfer_request(db, current_user(), found):
        deny(db, f"transfer request {request_id}")
    return found


@bp.get("/<int:request_id>")
@roles("administrator", "practitioner")
def show(request_id: int):
    return _show(request_id, {}, "", "")


def _show(request_id: int, errors: dict, decision: str, reason: str):
    user = current_user()
    with runtime().db.session() as db:
        found = _visible(db, request_id)
        deciding = policy.may_decide_transfer(db, user, found.episode)
        problem = service.release_problem(db, found.episode) if deciding and found.status == "requested" else None
        audit.record(db, "transfer_request_viewed", actor_id=user.id,
                     episode_id=found.episode_id if deciding else None, request_id=found.id)
        page = render_template("transfers/request_show.html", req=found, deciding=deciding, problem=problem,
                               errors=errors, decision=decision, reason=reason, live=found.live(now()),
                               moment_now=now(), release_days=service.RELEASE_DAYS, error_title=bool(errors))
    return page, 400 if errors else 200


@bp.post("/<int:request_id>")
@roles("administrator", "practitioner")
def decide(request_id: int):
    user = current_user()
    decision, reason = text(request.form, "decision", 20), text(request.form, "decision_reason", 2000)
    with runtime().db.session() as db:
        found = _visible(db, request_id)
        if not policy.may_decide_transfer(db, user, found.episode):
            deny(db, f"decide transfer request {request_id}")
        try:
            service.decide(db, user, found, decision, reason)
        except service.RequestProblems as problems:
            db.rollback()
            errors = _linked(problems.errors)
        else:
            errors = None
            released = found.status == "released"
    if errors:
        return _show(request_id, errors, decision, reason)
    flash("The episode is released: download the transfer file below and send it to the authority that asked."
          if released else "The request is declined. The authority that asked will see your reason.", "success")
    return redirect(url_for("transfer_requests.show", request_id=request_id))


@bp.get("/<int:request_id>/transfer.json")
@roles("administrator", "practitioner")
def transfer_file(request_id: int):
    user = current_user()
    with runtime().db.session() as db:
        found = _visible(db, request_id)
        if not policy.may_decide_transfer(db, user, found.episode) or not found.live(now()):
            deny(db, f"transfer file of request {request_id}")
        try:
            document = export_service.export_for_transfer(db, found, user, runtime().config)
        except TransferKeyMissing:
            abort(503, "This eCAF holds no transfer key: contact the eCAF administrator")
        reference = found.episode.reference
    body = json.dumps(document, indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="CAF-{reference}-transfer.json"', "Cache-Control": "no-store"})
