"""The service status page: open episodes by stage and what the engine is waiting for.

It shows references and counts only, never a child's details, and only of the administrator's own
authority."""
from __future__ import annotations

from flask import Blueprint, render_template

from app.clock import now
from app.services import status
from app.web import runtime
from app.web.access import current_user, roles

bp = Blueprint("status", __name__)


@bp.get("/status")
@roles("administrator")
def index():
    with runtime().db.session() as session:
        found = status.overview(session, current_user())
    return render_template("status/index.html", by_stage=found.by_stage, by_status=found.by_status, rows=found.rows,
                           pending=found.pending, now=now())
