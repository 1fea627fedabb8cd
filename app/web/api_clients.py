"""Administrators' pages for the client systems that call the JSON API for their authority.

A client of another authority is answered 404, as one that does not exist. The secret is shown once,
on the page the registration redirects to (so reloading it registers nothing): it travels there in a
short-lived cookie of that page's own, sealed as the messages shown once are (app/web/flash_messages.py)
and bound to the administrator, so it is never kept on the server in clear. Who may:
app/policy/api_clients.py.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for

from app.models import API_SCOPES
from app.services import api_clients as service
from app.web import flash_messages, runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("api_clients", __name__, url_prefix="/admin/api-clients")
SCOPE_LABELS = {"index:read": "Search the national index (index:read)",
                "index:notify": "Tell the index about assessments held elsewhere (index:notify)",
                "transfers": "Request, release and import transfers (transfers)",
                "reports:read": "Read the authority's episodes as data for returns (reports:read)"}
CREDENTIALS_COOKIE = "ecaf-new-credentials"


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
                return _to_registered(made)
    page = render_template("api_clients/new.html", errors=errors, typed=typed, scopes=API_SCOPES,
                           labels=SCOPE_LABELS, error_title=bool(errors))
    return page, 400 if errors else 200


def _to_registered(made):
    """Post/redirect/get: the credentials go to the next page only, sealed for this administrator."""
    path = url_for("api_clients.registered", client_id=made.client.id)
    sealed = flash_messages.seal(current_app.secret_key, current_user().id, [("credentials", made.credentials)])
    answer = redirect(path)
    answer.set_cookie(CREDENTIALS_COOKIE, sealed, max_age=flash_messages.LIFETIME_SECONDS, path=path,
                      secure=runtime().config.cookie_secure, httponly=True, samesite="Strict")
    return answer


@bp.get("/<int:client_id>/registered")
@roles("administrator")
def registered(client_id: int):
    """The credentials, the first time this page is shown after registering; afterwards only that they
    were shown (eCAF keeps a hash of the secret and cannot show it again)."""
    with runtime().db.session() as db:
        client = _client_or_404(db, client_id)
        kept = dict(flash_messages.unseal(current_app.secret_key, current_user().id,
                                          request.cookies.get(CREDENTIALS_COOKIE)))
        credentials = kept.get("credentials", "")
        page = render_template("api_clients/registered.html", client=client,
                               credentials=credentials if credentials.startswith(client.client_id + ".") else None)
    answer = make_response(page)
    answer.headers["Cache-Control"] = "no-store"
    answer.delete_cookie(CREDENTIALS_COOKIE, path=request.path, secure=runtime().config.cookie_secure,
                         httponly=True, samesite="Strict")
    return answer


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
