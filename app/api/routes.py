"""The /api/v1 blueprint: no session, no CSRF (credentials on every call), problem details for errors."""
from __future__ import annotations

from flask import Blueprint, Flask, request

from app.api import index, notices, oauth, rate_limits, reports, transfers
from app.api.paths import BODY_LIMIT, LARGER_BODIES, PREFIX
from app.api.spec import document, spec
from app.web.access import api_client

bp = Blueprint("api", __name__, url_prefix=PREFIX)


@bp.before_request
def small_bodies():
    request.max_content_length = LARGER_BODIES.get(request.endpoint, BODY_LIMIT)


@bp.get("/openapi.json")
@api_client
def openapi():
    """The OpenAPI 3.1 document of this API (no credentials needed to read it)."""
    return document()


index.install(bp)
oauth.install(bp)
reports.install(bp)
notices.install(bp)
transfers.install(bp)


def install(app: Flask, csrf) -> None:
    csrf.exempt(bp)  # no cookie is read under /api/v1, so there is no session for a forged request to ride on
    app.register_blueprint(bp)
    oauth.init_app(app)
    rate_limits.install(app)
    spec.app = app
