"""An authority's own switches, kept by its administrators: contributions to the assessment."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import audit, policy
from app.models import Authority
from app.web import runtime
from app.web.access import current_user, roles
from app.web.form_input import text

bp = Blueprint("authority_settings", __name__)
MAX_REASON = 2000


def _page(authority: Authority, errors: dict | None = None, typed: dict | None = None, status: int = 200):
    return render_template("authority_settings/settings.html", authority=authority, errors=errors or {},
                           typed=typed or {}, error_title=bool(errors)), status


@bp.get("/admin/settings")
@roles("administrator")
def settings():
    with runtime().db.session() as session:
        return _page(session.get(Authority, policy.authority_id_of(current_user())))


@bp.post("/admin/settings")
@roles("administrator")
def save():
    typed = {"contributions": request.form.get("contributions", ""), "reason": text(request.form, "reason", MAX_REASON)}
    with runtime().db.session() as session:
        authority = session.get(Authority, policy.authority_id_of(current_user()))
        errors = {}
        if typed["contributions"] not in ("on", "off"):
            errors["contributions"] = "Select whether contributions are switched on"
        if not typed["reason"]:
            errors["reason"] = "Enter the reason for the change"
        if errors:
            return _page(authority, errors, typed, 400)
        enabled = typed["contributions"] == "on"
        if authority.contributors_enabled != enabled:
            authority.contributors_enabled = enabled
            audit.record(session, "authority_settings_changed", actor_id=current_user().id,
                         contributors_enabled=enabled, reason=typed["reason"])
        name = authority.name
    flash(f"Contributions are now switched {'on' if enabled else 'off'} in {name}.", "success")
    return redirect(url_for("authority_settings.settings"))
