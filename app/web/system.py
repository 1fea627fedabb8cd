"""The administrators' System page: whether messages are going out, workers are running and
deadlines are firing, in words. Figures only, never a child's details; audited like their other views."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, render_template

from app import audit
from app.services import system_status
from app.web import runtime
from app.web.access import current_user, roles
from app.uk_time import date_time

bp = Blueprint("system", __name__)


@bp.app_template_filter("system_time")
def system_time(seconds: float) -> str:
    """A worker's Unix time (its heartbeat) as the pages show times."""
    return date_time(datetime.fromtimestamp(seconds, timezone.utc))


@bp.get("/admin/system")
@roles("administrator")
def index():
    config = runtime().config
    with runtime().db.session() as session:
        report = system_status.report(session, config, current_user())
        audit.record(session, "system_viewed", actor_id=current_user().id,
                     attention=",".join(report.attention) or None)
    return render_template("admin/system.html", report=report, now_seconds=report.checked_at.timestamp(),
                           timer_poll=config.timer_poll_seconds)
