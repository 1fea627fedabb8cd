"""Deadline alerts: the administrator calls the originator, as the FAQ describes, and records the outcome."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.services import task_list
from app.web import runtime
from app.web.access import current_user, deny, roles
from app.web.form_input import text

bp = Blueprint("alerts", __name__)
MAX_OUTCOME = 2000


@bp.post("/admin/alerts/<int:alert_id>/resolve")
@roles("administrator")
def resolve(alert_id: int):
    outcome = text(request.form, "outcome", MAX_OUTCOME)
    with runtime().db.session() as session:
        alert = task_list.alert_of(session, current_user(), alert_id)
        if alert is None:
            deny(session, f"alert {alert_id}")
        if alert.resolved_at is not None:
            flash("The outcome of this alert had already been recorded.", "important")
            return redirect(url_for("tasks.home"))
        problem = _outcome_problem(outcome)
        if problem:
            errors = {f"outcome-{alert_id}": problem}
            rows = task_list.ready_tasks(session, current_user(), set())
            alerts = task_list.open_alerts(session, current_user())
            return render_template("tasks/home.html", rows=rows, filters=set(), alerts=alerts, errors=errors,
                                   typed={alert_id: outcome}, error_title=True), 400
        task_list.resolve_alert(session, current_user(), alert, outcome)
        reference = alert.episode.reference
    flash(f"The outcome of the call about {reference} is recorded and the alert is closed.", "success")
    return redirect(url_for("tasks.home"))


def _outcome_problem(outcome: str) -> str | None:
    if not outcome:
        return "Enter the outcome of your call to the originator"
    if len(outcome) > MAX_OUTCOME:
        return f"The outcome must be {MAX_OUTCOME} characters or fewer"
    return None
