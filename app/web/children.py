"""Start a CAF: find the child first, then record the child (or several siblings) and start."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from app.engine.errors import NoProcessDeployed, OpenEpisodeExists
from app.forms import child_identity
from app.models import Authority
from app.nhs_number import MISSING_REASONS
from app.services import children as service
from app.web import family_prefill, runtime
from app.web.access import current_user, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("children", __name__, url_prefix="/children")
MAX_SIBLINGS = 8



def _criteria(form):
    errors = {}
    parts = date_parts(form, "date_of_birth")
    born, problem = parse_date(parts, "date of birth", past=True)
    if problem:
        errors["date-of-birth-day"] = problem
    postcode = service.normalise_postcode(text(form, "postcode", 10))
    if not service.valid_postcode(postcode):
        errors["postcode"] = "Enter a real postcode, like W9 2AB"
    identity, problems = child_identity.read(child_identity.typed(form))
    errors.update(problems)
    criteria = service.Criteria(given_names=text(form, "given_names"), family_name=text(form, "family_name"),
                                date_of_birth=born, postcode=postcode, nhs_number=identity.number)
    if not criteria.family_name:
        errors["family-name"] = "Enter the child's family name"
    elif not (born or postcode) and "date-of-birth-day" not in errors and "postcode" not in errors:
        errors["date-of-birth-day"] = "Enter the child's date of birth or postcode"
    return criteria, parts, errors


@bp.route("/find", methods=["GET", "POST"])
@roles("practitioner")
def find():
    form = request.form
    parts, errors = date_parts(form, "date_of_birth"), {}
    if request.method == "POST":
        criteria, parts, errors = _criteria(form)
        if not errors:
            with runtime().db.session() as session:
                result = service.search(session, current_user(), criteria)
                return render_template("children/find.html", form=form, parts=parts, errors={}, result=result,
                                       may_exist=service.MAY_EXIST)
    return render_template("children/find.html", form=form, parts=parts, errors=errors, result=None,
                           error_title=bool(errors)), 400 if errors else 200


def _authorities(session) -> list[Authority]:
    return session.scalars(select(Authority).order_by(Authority.name)).all()


def _read_children(form) -> tuple[list[dict], int]:
    """The rows of the record form as typed, and how many there are (1 to MAX_SIBLINGS)."""
    posted = form.get("count", "1")
    count = min(max(int(posted), 1), MAX_SIBLINGS) if posted.isdigit() else 1
    rows = []
    for i in range(count):
        rows.append({"given_names": text(form, f"child-{i}-given_names"),
                     "family_name": text(form, f"child-{i}-family_name"),
                     "dob": date_parts(form, f"child-{i}-date_of_birth"),
                     "identity": child_identity.typed(form, f"child-{i}-")})
    return rows, count


@bp.post("/new")
@roles("practitioner")
def record():
    """Record the child (and any siblings) and start their episodes."""
    form = request.form
    rows, count = _read_children(form)
    action = form.get("action", "")
    join = family_prefill.source(form)  # a CAF for another child in a family: its details are offered
    if join is not None:
        with runtime().db.session() as session:
            offer = g.family_offer = family_prefill.offered(session, join)  # asked (and audited) once
        if offer is None:
            return _record_page(form.to_dict() | {"family": "", "sibling_of": ""}, rows,
                                {"family": family_prefill.REFUSED})
        if action == "prefill":
            return _record_page(family_prefill.fill(form, rows, offer), rows, {})
    if action == "add" and count < MAX_SIBLINGS:
        rows.append({"given_names": "", "family_name": rows[-1]["family_name"], "dob": {}, "identity": {}})
        return _record_page(form, rows, {}, focus=len(rows) - 1)
    if action.startswith("remove-") and count > 1:
        index = int(action.removeprefix("remove-")) if action.removeprefix("remove-").isdigit() else -1
        if 0 <= index < len(rows):
            rows.pop(index)
        return _record_page(form, rows, {})
    if action == "prefill":
        return _record_page(form, rows, {})
    errors, children = {}, []
    for i, row in enumerate(rows):
        who = "the child" if len(rows) == 1 else f"child {i + 1}"
        if not row["given_names"]:
            errors[f"child-{i}-given-names"] = f"Enter the given names of {who}"
        if not row["family_name"]:
            errors[f"child-{i}-family-name"] = f"Enter the family name of {who}"
        born, problem = parse_date(row["dob"], f"the date of birth of {who}", required=True, past=True)
        if problem:
            errors[f"child-{i}-date-of-birth-day"] = problem
        identity, problems = child_identity.read(row["identity"], f"child-{i}-", who=who, choice_required=True)
        errors.update(problems)
        if identity.number and identity.number in [c.nhs_number for c in children]:
            errors[f"child-{i}-nhs-number"] = f"The NHS number of {who} is the same as another child's: check both"
        children.append(service.NewChild(row["given_names"], row["family_name"], born, None, None,
                                         identity.number, identity.missing))
    postcode = service.normalise_postcode(text(form, "postcode", 10))
    if not postcode:
        errors["postcode"] = "Enter the postcode of the child's home address"
    elif not service.valid_postcode(postcode):
        errors["postcode"] = "Enter a real postcode, like W9 2AB"
    address = text(form, "address")
    if not address:
        errors["address"] = "Enter the child's home address"
    authority_id = int(form["authority"]) if form.get("authority", "").isdigit() else None
    with runtime().db.session() as session:
        if authority_id is None or session.get(Authority, authority_id) is None:
            errors["authority"] = "Choose the local authority where the child lives"
        for i, child in enumerate(children):
            holder = service.holder_of(session, child.nhs_number) if child.nhs_number and not errors else None
            if holder is not None and not service.returning(session, current_user(), holder, child):
                errors[f"child-{i}-nhs-number"] = service.number_refusal(session, current_user(), holder, child)
                continue
            existing = service.already_open(session, child) if not errors else None
            if existing is not None:
                asked = service.Criteria(child.given_names, child.family_name, child.date_of_birth, postcode)
                errors[f"child-{i}-given-names"] = service.refusal(session, current_user(), existing, asked)
    if errors:
        return _record_page(form, rows, errors)
    for child in children:
        child.postcode, child.address = postcode, address
    try:
        episode_ids = service.start_for(runtime(), current_user(), children, authority_id,
                                        family_prefill.join_for(form, offer, join) if join else None)
    except PermissionError:  # the user lost their part in the family since the form was shown
        return _record_page(form, rows, {"family": family_prefill.REFUSED})
    except OpenEpisodeExists:
        return _record_page(form, rows, {"child-0-given-names": "A CAF was opened for this child a moment ago "
                                                                "by someone else: search again"})
    except service.NhsNumberTaken as taken:
        i = next(i for i, child in enumerate(children) if child.nhs_number == str(taken))
        return _record_page(form, rows, {f"child-{i}-nhs-number": "A child with this NHS number was recorded a moment "
                                                                  "ago by someone else: search again"})
    except NoProcessDeployed:
        return _record_page(form, rows, {"child-0-given-names": "eCAF has no CAF process deployed yet: contact "
                                                                "the eCAF administrator"})
    if len(episode_ids) == 1:
        flash("The CAF has started. Complete the pre-assessment checklist first.", "success")
    else:
        flash(f"CAFs have started for {len(episode_ids)} siblings, linked to each other.", "success")
    return redirect(url_for("episodes.show", episode_id=episode_ids[0]))


def _record_page(form, rows, errors, focus=None):
    with runtime().db.session() as session:
        authorities = _authorities(session)
        default = current_user().authority.id if current_user().authority else None
        offer = None if errors.get("family") else g.get("family_offer")
        page = render_template("children/record.html", form=form, rows=rows, errors=errors,
                               authorities=authorities, chosen=form.get("authority") or str(default or ""),
                               max_siblings=MAX_SIBLINGS, error_title=bool(errors), family=offer,
                               family_adults=family_prefill.adults_as_typed(form, offer) if offer else [],
                               missing_reasons=list(MISSING_REASONS.items()))
    return page, 400 if errors else 200
