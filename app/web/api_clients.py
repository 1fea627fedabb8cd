"""Administrators' pages for the client systems that call the JSON API for their authority.

A client of another authority is answered 404, as one that does not exist; the secret is shown in
the answer to the registration only, and never again. Who may: app/policy/api_clients.py.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app.models import API_SCOPES
from app.services import api_clients as service
from app.web import runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("api_clients", __name__, url_prefix="/admin/api-clients")
SCOPE_LABELS = {"index:read": "Search the national index (index:read)",
                "index:notify": "Tell the index about assessments held elsewhere (index:notify)",
                "transfers": "Request, release and import transfers (transfers)",
                "reports:read": "Read the authority's episodes as data for returns (reports:read)"}


def _client_or_404(db, client_id: int):
    try:
        return service.client(db, current_user(), client_id)
    except service.ApiClientRefused:
        deny(db, f"api client {client_id}")


@bp.get("/")
@roles("administrator")
def index():
    with runtime().db.session() as db:
        try:
            found = service.clients(db, current_user())
        except service.ApiClientRefused:
            deny(db, "api clients", 403)
        return render_template("api_clients/index.html", clients=found, today=service.today())


@bp.route("/new", methods=["GET", "POST"])
@roles("administrator")
def new():
    errors, typed = {}, {"name": "", "scopes": [], "expires": date_parts({}, "expires_on")}
    if request.method == "POST":
        form = request.form
        typed = {"name": text(form, "name", 200), "scopes": form.getlist("scopes"),
                 "expires": date_parts(form, "expires_on")}
        expires_on, problem = parse_date(typed["expires"], "the date the credentials expire", required=True)
        with runtime().db.session() as db:
            try:
                made = service.register(db, current_user(), name=typed["name"], scopes=typed["scopes"],
                                        expires_on=expires_on, expiry_problem=problem)
            except service.ApiClientRefused:
                deny(db, "register an api client", 403)
            except service.ApiClientInvalid as invalid:
                errors = invalid.problems
                db.rollback()
            else:
                # Shown in this answer only, never stored in clear nor put in a later page or a session.
                page = render_template("api_clients/registered.html", client=made.client,
                                       credentials=made.credentials)
                return page, 200, {"Cache-Control": "no-store"}
    page = render_template("api_clients/new.html", errors=errors, typed=typed, scopes=API_SCOPES,
                           labels=SCOPE_LABELS, error_title=bool(errors))
    return page, 400 if errors else 200


@bp.route("/<int:client_id>/revoke", methods=["GET", "POST"])
@roles("administrator")
def revoke(client_id: int):
    errors, reason = {}, ""
    with runtime().db.session() as db:
        client = _client_or_404(db, client_id)
        if client.revoked_at is not None:
            abort(404)
        if request.method == "POST":
            reason = text(request.form, "reason", 2000)
            try:
                service.revoke(db, current_user(), client.id, reason)
            except service.ApiClientInvalid as invalid:
                errors = invalid.problems
            else:
                flash(f"{client.name} can no longer call eCAF.", "success")
                return redirect(url_for("api_clients.index"))
        page = render_template("api_clients/revoke.html", client=client, errors=errors, reason=reason,
                               error_title=bool(errors))
    return page, 400 if errors else 200
