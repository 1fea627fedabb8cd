"""Error pages: a clear message and a way back, never a stack trace or a hint of what exists."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.api import problems
from app.api.paths import is_api_path
from app.engine.errors import StepInterrupted

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("There was a problem with your request", "Go back, check what you entered and try again."),
    403: ("You cannot use this page", "Your role does not include this page. Contact the eCAF administrator "
                                      "if you think you need it."),
    404: ("Page not found", "If you typed the web address, check it is correct. If you followed a link to an "
                            "episode, you may not have access to it."),
    405: ("Page not found", "This page cannot be used like that."),
    413: ("What you sent is too large", "Shorten the text or send fewer files, then try again."),
    429: ("Too many requests", "Wait a minute, then try again."),
    500: ("Sorry, there is a problem with the service", "Try again later. Nothing you saved has been lost."),
}


def _page(status: int, title: str | None = None, body: str | None = None):
    default_title, default_body = MESSAGES.get(status, MESSAGES[400])
    return render_template("errors/error.html", title=title or default_title, body=body or default_body,
                           status=status), status


def install(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        return _page(400, "This form could not be sent",
                     "The form was open too long or did not come from eCAF. Go back, reload the page and "
                     "send it again. Save drafts of long forms as you go.")

    @app.errorhandler(StepInterrupted)
    def step_interrupted(error: StepInterrupted):
        if is_api_path(request.path):
            return problems.response(503, "The database was busy: nothing was changed. Try again.",
                                     headers={"Retry-After": "5"})
        # The database was busy or briefly away, even after a few tries: nothing changed.
        page, status = _page(503, "Sorry, that did not go through",
                             "eCAF could not save this just now, so nothing was changed. Go back and try again "
                             "in a moment.")
        return page, status, {"Retry-After": "5"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if is_api_path(request.path):
            return problems.for_error(error)  # a client system reads problem details, never a page
        return _page(error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        if is_api_path(request.path):
            return problems.for_error(error)
        return _page(500)
