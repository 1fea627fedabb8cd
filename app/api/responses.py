"""The error responses every operation of the API can give, written into the OpenAPI document here,
once, so an endpoint added later is described without declaring them itself.

Every error is problem details (application/problem+json). What applies to an operation follows from
its shape: any call may be limited (429 with Retry-After); credentials (401, 403), a body (400, 413, 415), parameters (400),
a path parameter (404, the thing it names is not there or not this client's), and any operation may
meet a busy database (503 with Retry-After) or a fault (500). 405 belongs to no documented operation
(it answers a method the document does not list), so it is not listed.
"""
from __future__ import annotations

import json

from app.api.problems import MEDIA_TYPE, TITLES
from app.api.schemas import ProblemDetails

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before calling again", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "The credentials the API expects (Bearer)",
                                         "required": True, "schema": {"type": "string"}}}
HEADERS = {429: RETRY_AFTER, 503: RETRY_AFTER, 401: WWW_AUTHENTICATE}
WHY = {
    400: "A field is missing or invalid (`errors` names each one), or the body is not JSON",
    401: "No valid client credentials (unknown, wrong, expired and revoked alike)",
    403: "The client's scopes do not include this call",
    404: "Nothing at this address for this client",
    413: "The request body is larger than the API accepts",
    415: "The request body is not application/json",
    429: "Too many calls by this client, or too many failing credentials from this address",
    500: "A fault on our side; nothing was changed",
    503: "The database was busy; nothing was changed",
}


def statuses(path: str, operation: dict, document: dict) -> list[int]:
    """The error statuses that apply to this operation."""
    found = [429, 500, 503]  # every documented operation is held to a rate limit (the token endpoint too)
    if any(operation.get("security", document.get("security") or [])):
        found += [401, 403]
    if "requestBody" in operation:
        found += [400, 413, 415]
    if operation.get("parameters"):
        found.append(400)
    if "{" in path:
        found.append(404)
    return sorted(set(found))


def described(document: dict) -> dict:
    """A copy of spectree's document in which every operation lists every error it can give."""
    copy = json.loads(json.dumps(document, default=str))
    copy.setdefault("components", {}).setdefault("schemas", {})["ProblemDetails"] = \
        ProblemDetails.model_json_schema()
    for path, operations in copy.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, answer in list(responses.items()):
                content = answer.get("content", {})
                # Spectree writes every response as application/json; errors are sent as problem details.
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    answer["content"] = {MEDIA_TYPE: content["application/json"]}
            for status in statuses(path, operation, copy):
                answer = responses.setdefault(str(status), {
                    "description": WHY.get(status, TITLES.get(status, "Error")),
                    "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}}})
                if status in HEADERS:
                    answer.setdefault("headers", {}).update(HEADERS[status])
    return copy
