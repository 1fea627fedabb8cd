"""Search requests to the eCAF administrator: add children one by one, then send; see the answers."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for

from app.audit_lists import episodes_shown
from app.forms import child_identity
from app.services import search_requests as service
from app.services.children import normalise_postcode, valid_postcode
from app.web import runtime
from app.web.access import current_user, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("search_requests", __name__, url_prefix="/search-requests")
DRAFT = "search_request_draft"  # kept in the server-side session until sent
MAX_CHILDREN = 10



@bp.get("/")
@roles("practitioner")
def index():
    with runtime().db.session() as db:
        requests = service.mine(db, current_user())
        episodes_shown(db, current_user().id, "my_search_requests",
                       [c.matched_episode_id for r in requests for c in r.children],
                       search_requests=[r.id for r in requests])
        return render_template("search_requests/index.html", requests=requests)


@bp.get("/<int:request_id>")
@roles("practitioner")
def show(request_id: int):
    with runtime().db.session() as db:
        found = service.one_of_mine(db, current_user(), request_id)
        if found is None:
            abort(404)
        episodes_shown(db, current_user().id, "my_search_request", [c.matched_episode_id for c in found.children],
                       search_requests=[found.id])
        return render_template("search_requests/show.html", sr=found)


def _draft() -> dict:
    return dict(session.get(DRAFT) or {"reason": "", "children": []})


@bp.route("/new", methods=["GET", "POST"])
@roles("practitioner")
def new():
    draft, errors, typed = _draft(), {}, {}
    form = request.form
    if request.method == "POST":
        draft["reason"] = text(form, "reason", 2000)
        action = form.get("action", "")
        typed = {"given_names": text(form, "given_names"), "family_name": text(form, "family_name"),
                 "dob": date_parts(form, "date_of_birth"), "postcode": text(form, "postcode", 10),
                 "notes": text(form, "notes", 1000), **child_identity.typed(form)}
        if action == "add":
            child, errors = _child_from(typed)
            if len(draft["children"]) >= MAX_CHILDREN:
                errors["given-names"] = f"A request can hold up to {MAX_CHILDREN} children: send this one first"
            if not errors:
                draft["children"] = draft["children"] + [child]
                typed = {}
        elif action.startswith("remove-"):
            index = action.removeprefix("remove-")
            if index.isdigit() and int(index) < len(draft["children"]):
                draft["children"] = [c for i, c in enumerate(draft["children"]) if i != int(index)]
        elif action == "send":
            if not draft["reason"]:
                errors["reason"] = "Enter why you need the eCAF administrator to search"
            if not draft["children"]:
                errors["given-names"] = "Add at least one child to your request"
            if not errors:
                with runtime().db.session() as db:
                    sent = service.submit(db, current_user(), draft["reason"], draft["children"])
                    reference = sent.reference
                    request_id = sent.id
                session.pop(DRAFT, None)
                flash(f"Your search request {reference} has been sent to the eCAF administrator.", "success")
                return redirect(url_for("search_requests.show", request_id=request_id))
        session[DRAFT] = draft
    status = 400 if errors else 200
    return render_template("search_requests/new.html", draft=draft, errors=errors, typed=typed,
                           error_title=bool(errors)), status


def _child_from(typed: dict) -> tuple[dict, dict]:
    errors = {}
    if not typed["given_names"]:
        errors["given-names"] = "Enter the child's given names"
    if not typed["family_name"]:
        errors["family-name"] = "Enter the child's family name"
    born, problem = parse_date(typed["dob"], "the date of birth", past=True)
    if problem:
        errors["date-of-birth-day"] = problem
    postcode = normalise_postcode(typed["postcode"])
    if not valid_postcode(postcode):
        errors["postcode"] = "Enter a real postcode, like W9 2AB"
    identity, problems = child_identity.read({"nhs_number": typed.get("nhs_number", "")})
    errors.update(problems)
    child = {"given_names": typed["given_names"], "family_name": typed["family_name"],
             "date_of_birth": born.isoformat() if born else None, "postcode": postcode,
             "nhs_number": identity.number, "notes": typed["notes"] or None}
    return child, errors
