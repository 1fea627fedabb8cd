"""The family page, and adding an adult, changing one and adding a child to the family."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import policy
from app.services import families as service
from app.services import family_changes as changes
from app.web import request_db
from app.web.access import current_user, deny, roles
from app.web.form_input import text

bp = Blueprint("families", __name__, url_prefix="/families")


def _visible_or_404(session, family_id: int, asked_for: str) -> service.FamilyView:
    view = service.family_page(session, current_user(), family_id)
    if view is None:
        deny(session, f"{asked_for} of family {family_id}")
    return view


def _changeable_or_refused(session, family_id: int, asked_for: str) -> None:
    """404 for a family the user cannot see (as for none), 403 for one they see but may not change."""
    if not policy.may_see_family(session, current_user(), family_id):
        deny(session, f"{asked_for} of family {family_id}")
    if not policy.may_change_family(session, current_user(), family_id):
        deny(session, f"{asked_for} of family {family_id}", status=403)


@bp.get("/<int:family_id>")
@roles("practitioner", "administrator")
def show(family_id: int):
    with request_db.transaction() as session:
        view = _visible_or_404(session, family_id, "the page")
        return render_template("families/show.html", view=view)


def _adult_form(form, children: dict[int, str]) -> changes.AdultForm:
    return changes.AdultForm(
        name=text(form, "name", changes.NAME_LIMIT), phone=text(form, "phone", changes.PHONE_LIMIT),
        links={child_id: (text(form, f"relationship-{child_id}", changes.RELATIONSHIP_LIMIT),
                          form.get(f"responsible-{child_id}") == "yes") for child_id in children})


def _adult_page(view, typed: changes.AdultForm, errors: dict, adult_id: int | None = None):
    page = render_template("families/adult.html", view=view, typed=typed, errors=errors, adult_id=adult_id)
    return page, 400 if errors else 200


@bp.route("/<int:family_id>/adults/new", methods=["GET", "POST"])
@roles("practitioner", "administrator")
def add_adult(family_id: int):
    with request_db.transaction() as session:
        _changeable_or_refused(session, family_id, "add an adult")
        view = service.family_page(session, current_user(), family_id)
        children = {c.child.id: c.child.display_name for c in view.children}
        if request.method == "GET":
            return _adult_page(view, changes.AdultForm(), {})
        typed = _adult_form(request.form, children)
        outcome = changes.save_adult(session, current_user(), family_id, typed)
        if not outcome.done:
            return _adult_page(view, typed, outcome.errors)
    flash(f"{typed.name} has been added to the family.", "success")
    return redirect(url_for("families.show", family_id=family_id))


@bp.route("/<int:family_id>/adults/<int:adult_id>", methods=["GET", "POST"])
@roles("practitioner", "administrator")
def edit_adult(family_id: int, adult_id: int):
    with request_db.transaction() as session:
        _changeable_or_refused(session, family_id, f"change adult {adult_id}")
        if changes.adult_of(session, current_user(), family_id, adult_id) is None:
            deny(session, f"adult {adult_id} of family {family_id}")
        view = service.family_page(session, current_user(), family_id)
        children = {c.child.id: c.child.display_name for c in view.children}
        if request.method == "GET":
            shown = next(a for a in view.adults if a.adult.id == adult_id)
            typed = changes.AdultForm(shown.adult.name, shown.adult.phone or "",
                                      {r.child_id: (r.relationship, r.parental_responsibility)
                                       for r in shown.relationships})
            return _adult_page(view, typed, {}, adult_id)
        typed = _adult_form(request.form, children)
        outcome = changes.save_adult(session, current_user(), family_id, typed, adult_id)
        if not outcome.done:
            return _adult_page(view, typed, outcome.errors, adult_id)
    flash(f"{typed.name}'s details have been changed.", "success")
    return redirect(url_for("families.show", family_id=family_id))


@bp.post("/<int:family_id>/adults/<int:adult_id>/remove")
@roles("practitioner", "administrator")
def remove_adult(family_id: int, adult_id: int):
    with request_db.transaction() as session:
        _changeable_or_refused(session, family_id, f"remove adult {adult_id}")
        adult = changes.adult_of(session, current_user(), family_id, adult_id)
        if adult is None:
            deny(session, f"adult {adult_id} of family {family_id}")
        name = adult.name
        changes.remove_adult(session, current_user(), family_id, adult)
    flash(f"{name} is no longer recorded as a parent or carer of these children.", "success")
    return redirect(url_for("families.show", family_id=family_id))


@bp.route("/<int:family_id>/children/new", methods=["GET", "POST"])
@roles("practitioner", "administrator")
def add_child(family_id: int):
    with request_db.transaction() as session:
        _changeable_or_refused(session, family_id, "add a child")
        view = service.family_page(session, current_user(), family_id)
        reference = text(request.form, "reference", 40)
        errors = changes.add_child(session, current_user(), family_id, reference) if request.method == "POST" else {}
        if request.method == "GET" or errors:
            page = render_template("families/add_child.html", view=view, reference=reference, errors=errors)
            return page, 400 if errors else 200
    flash("The child has been added to the family.", "success")
    return redirect(url_for("families.show", family_id=family_id))
