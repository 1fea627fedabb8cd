"""An authority's administrators require passkeys of some roles: from then on, a user of such a role
without a passkey adds one after their code at sign-in."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import policy
from app.accounts import passkeys
from app.models import Authority
from app.web import runtime
from app.web.access import current_user, roles
from app.web.form_input import text

bp = Blueprint("passkey_settings", __name__)
MAX_REASON = 2000
ROLE_NAMES = {"practitioner": "Practitioners", "service_team": "Service team members",
              "administrator": "Administrators"}


@bp.route("/admin/settings/passkeys", methods=["GET", "POST"])
@roles("administrator")
def settings():
    errors, typed = {}, {}
    with runtime().db.session() as db:
        authority = db.get(Authority, policy.authority_id_of(current_user()))
        required = passkeys.required_roles(db, authority.id)
        if request.method == "POST":
            chosen = set(request.form.getlist("roles"))
            typed = {"roles": chosen, "reason": text(request.form, "reason", MAX_REASON)}
            if chosen - set(passkeys.REQUIRABLE_ROLES):
                errors["roles"] = "Select only the roles listed"
            if not typed["reason"]:
                errors["reason"] = "Enter the reason for the change"
            if not errors:
                changed = passkeys.set_required_roles(db, authority.id, chosen, current_user().id, typed["reason"])
                names = [ROLE_NAMES[r].lower() for r in passkeys.REQUIRABLE_ROLES if r in chosen]
                flash(("Passkeys are now required of " + ", ".join(names) + "." if names else
                       "Passkeys are not required of anyone.") if changed else "Nothing was changed.", "success")
                return redirect(url_for("passkey_settings.settings"))
        name = authority.name
    return render_template("passkeys/settings.html", authority_name=name, required=typed.get("roles", required),
                           role_names=ROLE_NAMES, roles=passkeys.REQUIRABLE_ROLES, errors=errors,
                           reason=typed.get("reason", ""), error_title=bool(errors)), 400 if errors else 200
