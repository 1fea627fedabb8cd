"""Administrators record vetting and training for the accounts of their authority (N4)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import policy
from app.accounts import vetting
from app.clock import now
from app.models import VETTING_TYPES, Organisation, User
from app.web import runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("vetting", __name__, url_prefix="/accounts")
RENEW_WITHIN_DAYS = 60


def _accounts_query(admin: User):
    return (select(User).join(Organisation, User.organisation_id == Organisation.id)
            .where(policy.authority_clause(admin, Organisation.authority_id)))


def _account_or_404(session, user_id: int) -> User:
    user = session.scalar(_accounts_query(current_user()).where(User.id == user_id))
    if user is None:
        deny(session, f"account {user_id}")
    return user


def vetting_from(form) -> tuple[dict, vetting.VettingCheck | None, dict]:
    """The vetting check and training date as typed, the check when every date is real, and the problems."""
    typed = {"kind": text(form, "kind", 40), "reference": text(form, "reference", 100),
             "checked_on": date_parts(form, "checked_on"), "expires_on": date_parts(form, "expires_on"),
             "training_on": date_parts(form, "training_on")}
    errors = {}
    if typed["kind"] not in VETTING_TYPES:
        errors["kind"] = "Select the type of vetting check"
    if not typed["reference"]:
        errors["reference"] = "Enter the check's reference number"
    checked, problem = parse_date(typed["checked_on"], "the date of the check", required=True, past=True)
    if problem:
        errors["checked-on-day"] = problem
    expires, problem = parse_date(typed["expires_on"], "the expiry date")
    if problem:
        errors["expires-on-day"] = problem
    trained, problem = parse_date(typed["training_on"], "the training date", required=True, past=True)
    if problem:
        errors["training-on-day"] = problem
    if errors:
        return typed, None, errors
    return typed, vetting.VettingCheck(typed["kind"], typed["reference"], checked, expires, trained), {}


@bp.get("/vetting")
@roles("administrator")
def index():
    today = now().date()
    with runtime().db.session() as session:
        accounts = session.scalars(_accounts_query(current_user()).order_by(User.full_name)).all()
        rows = [{"user": u, "problem": u.vetting_problem(today),
                 "renew_soon": u.vetting_expires_on is not None
                 and today <= u.vetting_expires_on <= today + timedelta(days=RENEW_WITHIN_DAYS)}
                for u in accounts]
        rows.sort(key=lambda r: (r["problem"] is None, not r["renew_soon"], r["user"].full_name))
        return render_template("vetting/index.html", rows=rows, renew_within=RENEW_WITHIN_DAYS)


@bp.route("/<int:user_id>/vetting", methods=["GET", "POST"])
@roles("administrator")
def record(user_id: int):
    errors, typed = {}, {}
    with runtime().db.session() as session:
        user = _account_or_404(session, user_id)
        if request.method == "POST":
            typed, check, errors = vetting_from(request.form)
            if check is not None:
                for message in vetting.record(session, user, check, by_id=current_user().id):
                    errors["expires-on-day" if "expiry" in message else "reference"] = message
            if not errors:
                name = user.full_name
                session.commit()
                flash(f"The vetting of {name} is recorded.", "success")
                return redirect(url_for("vetting.index"))
        return render_template("vetting/record.html", account=user, errors=errors, typed=typed,
                               types=VETTING_TYPES), 400 if errors else 200
