"""The national index: ask whether a CAF exists for a child and whom to contact; shield a child.

Searches are posted, never sent as query strings, so names and reasons stay out of URLs and logs.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import policy
from app.audit_lists import episodes_shown
from app.forms import child_identity
from app.models import Child, Episode
from app.services import national_index as service
from app.services import shielding as shielding_service
from app.services.children import normalise_postcode, valid_postcode
from app.web import runtime
from app.web.access import current_user, deny, roles, signed_in
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("national_index", __name__)
FORM_ORDER = ["nhs-number", "family-name", "date-of-birth-day", "postcode", "reason"]


def _read_search(form) -> tuple[dict, dict]:
    """The search as typed, ready for the service, and any problems keyed by field id."""
    errors = {}
    born, problem = parse_date(date_parts(form, "date_of_birth"), "date of birth", past=True)
    if problem:
        errors["date-of-birth-day"] = problem
    postcode = normalise_postcode(text(form, "postcode", 10))
    if not valid_postcode(postcode):
        errors["postcode"] = "Enter a real postcode, like W9 2AB"
    identity, problems = child_identity.read(child_identity.typed(form))
    errors.update(problems)
    search = {"given_names": text(form, "given_names"), "family_name": text(form, "family_name"),
              "date_of_birth": born, "postcode": postcode, "nhs_number": identity.number,
              "reason": text(form, "reason", 1000)}
    keys = service.normalised_keys(search["family_name"], born, postcode, identity.number)
    found = service.problems(keys, search["reason"])
    if "keys" in found and not errors:
        errors["family-name"] = found["keys"]
    if "reason" in found:
        errors["reason"] = found["reason"]
    return search, errors


@bp.route("/index", methods=["GET", "POST"])
@signed_in
def search():
    user = current_user()
    form = request.form
    errors, results = {}, None
    with runtime().db.session() as session:
        if not policy.may_search_index(user):
            deny(session, "national index search", 403)
        if request.method == "POST":
            typed, errors = _read_search(form)
            if not errors:
                results = service.search(session, user, **typed)
    page = render_template("national_index/search.html", form=form, parts=date_parts(form, "date_of_birth"),
                           errors=errors, results=results, error_title=bool(errors))
    return page, 400 if errors else 200


def _child_or_404(session, child_id: int) -> Child:
    child = session.get(Child, child_id)
    if child is None or not shielding_service.may_shield(current_user(), child):
        deny(session, f"shielding of child {child_id}", 404)
    return child


@bp.route("/children/<int:child_id>/shielding", methods=["GET", "POST"])
@roles("administrator")
def shielding(child_id: int):
    errors, reason = {}, ""
    with runtime().db.session() as session:
        child = _child_or_404(session, child_id)
        if request.method == "POST":
            reason = text(request.form, "reason", 1000)
            unshielding = request.form.get("action") == "unshield"
            change = shielding_service.unshield if unshielding else shielding_service.shield
            try:
                changed = change(session, current_user(), child, reason)
            except shielding_service.ReasonMissing as exc:
                errors["reason"] = str(exc)
            else:
                flash(_outcome(child, changed), "success" if changed else "info")
                return redirect(url_for("national_index.shielding", child_id=child.id))
        episodes_shown(session, current_user().id, "shielding",
                       session.scalars(select(Episode.id).where(Episode.child_id == child.id)), child_id=child.id)
        page = render_template("national_index/shielding.html", child=child, errors=errors, reason=reason,
                               error_title=bool(errors))
    return page, 400 if errors else 200


def _outcome(child: Child, changed: bool) -> str:
    if not changed:
        return f"{child.display_name} was already {'shielded' if child.shielded else 'not shielded'}: nothing changed."
    if child.shielded:
        return f"{child.display_name} is now shielded: practitioners' index searches no longer show this child."
    return f"The shield has been removed: {child.display_name} appears in index searches again."
