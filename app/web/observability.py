"""What every request leaves for operators: a request id, a latency figure and one log line.

The request id is taken from the trusted proxy's X-Request-Id only when eCAF is told it sits behind
one (ECAF_PROXY_HOPS > 0) and the id is plain enough to log; otherwise it is made here. It is bound
for the whole request, so audit rows and outbox messages written by the request carry it, and it is
sent back as X-Request-Id so a user's report or a proxy's log leads to every record.

Installed before every other hook, so that a request refused early (CSRF, sign-in, access) still
gets its id, figure and line.
"""
from __future__ import annotations

import time

from flask import Flask, g, request, session

from app import logs, metrics, request_ids
from app.web import runtime

HEADER = "X-Request-Id"


def _incoming_id() -> str | None:
    if runtime().config.proxy_hops <= 0:
        return None  # anyone could send the header: only a proxy we were told to trust may set it
    return request_ids.acceptable(request.headers.get(HEADER))


def _user_id() -> int | None:
    """The signed-in user's id from the session row already loaded; never loads anything itself."""
    return getattr(session, "user_id", None) if session is not None else None


def install(app: Flask) -> None:
    @app.before_request
    def begin():
        g.request_started = time.perf_counter()
        g.request_id = _incoming_id() or request_ids.new_id()
        g.request_id_token = request_ids.bind(g.request_id)

    @app.after_request
    def finish(response):
        if "request_id" not in g:  # refused before any hook ran (the session could not be opened)
            g.request_id = request_ids.new_id()
        response.headers[HEADER] = g.request_id
        seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
        endpoint = request.url_rule.endpoint if request.url_rule is not None else None
        metrics.request_observed(endpoint, request.method, response.status_code, seconds)
        logs.request_finished(method=request.method, endpoint=endpoint, status=response.status_code,
                              seconds=seconds, user_id=_user_id())
        return response

    @app.teardown_request
    def forget(_error=None):
        token = g.pop("request_id_token", None)
        if token is not None:
            request_ids.reset(token)
