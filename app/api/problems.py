"""RFC 9457 problem details: every error under /api/v1 is application/problem+json."""
from __future__ import annotations

import json

from flask import Response
from werkzeug.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 409: "Conflict", 410: "Gone",
    413: "Request too large", 415: "Unsupported media type", 422: "Unprocessable content",
    429: "Too many requests", 500: "Internal server error", 503: "Service unavailable",
}
DETAILS = {
    401: "Send valid client credentials: Authorization: Bearer <client id>.<secret>.",
    403: "This client system's scopes do not include this call.",
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    413: "The request body is too large.",
    415: "Send the request body as application/json.",
    500: "Something went wrong on our side. Nothing was changed.",
}


class Problem(HTTPException):
    """An error answered as problem details; raise it anywhere under /api/v1."""

    def __init__(self, status: int, detail: str | None = None, *, errors: dict | None = None,
                 headers: dict | None = None, members: dict | None = None):
        super().__init__(detail)
        self.code, self.detail, self.errors, self.extra_headers = status, detail, errors, headers or {}
        self.members = members

    def get_response(self, environ=None, scope=None) -> Response:
        return response(self.code, self.detail, errors=self.errors, headers=self.extra_headers, members=self.members)


def response(status: int, detail: str | None = None, *, errors: dict | None = None,
             headers: dict | None = None, members: dict | None = None) -> Response:
    """`members`: extension members (RFC 9457 section 3.2), such as OAuth's `error`."""
    body = {"type": f"https://ecaf.service.gov.uk/problems/{status}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail or DETAILS.get(status, TITLES.get(status, "Error"))}
    if errors:
        body["errors"] = errors  # field -> message, like a form's error summary
    body.update(members or {})
    answer = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    if status == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="ecaf"'
    answer.headers.update(headers or {})
    return answer


def for_error(error: Exception) -> Response:
    """The problem for any error raised while answering an API request."""
    if isinstance(error, Problem):
        return error.get_response()
    if isinstance(error, HTTPException):
        status = error.code or 500
        return response(status, headers={"Allow": error.valid_methods and ", ".join(error.valid_methods)}
                        if status == 405 and getattr(error, "valid_methods", None) else None)
    return response(500)
