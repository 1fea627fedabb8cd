"""The support page: whom to contact, and the rules of using eCAF. Reachable without signing in."""
from __future__ import annotations

from flask import Blueprint, render_template

from app.web.access import public

bp = Blueprint("support", __name__)


@bp.get("/support")
@public
def index():
    return render_template("support/index.html")
