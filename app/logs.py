"""Log lines operators can search: one JSON object a line, each carrying the request id.

`configure()` is called once by every command that runs eCAF (`ecaf serve`, `ecaf worker`, `ecaf run`
and the others, from the CLI's entry point). Lines are JSON when ECAF_LOG_FORMAT=json, or when it is
unset and standard error is not a terminal (a service manager, a container, a pipe); plain text when
ECAF_LOG_FORMAT=text or on a terminal. Each line has `time`, `level`, `logger`, `message`, the
`request_id` of the request or job it was written for, and the fields of `extra={"event": {...}}`.

What a line may hold: ids, kinds, statuses and durations. Never a name, a date of birth, a query
string or form content: the request line (`request_finished`) names the route, not the path, and
database errors are written without the values of their statement.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime, timezone

from app import request_ids

FORMAT_SETTING = "ECAF_LOG_FORMAT"
REQUEST_LOGGER = logging.getLogger("ecaf.request")
# The fields every line has; an event's fields never replace them.
_CORE = ("time", "level", "logger", "message", "request_id")


def wants_json(env=None, stream=None) -> bool:
    """JSON unless ECAF_LOG_FORMAT says text, or it is unset and `stream` is a terminal."""
    chosen = ((env if env is not None else os.environ).get(FORMAT_SETTING) or "").strip().lower()
    if chosen in ("json", "text"):
        return chosen == "json"
    if chosen:
        raise ValueError(f"{FORMAT_SETTING} must be json or text, not {chosen!r}")
    stream = stream if stream is not None else sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the code that wrote it, when the line is made."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_ids.current()
        return True


def _hide_statement_values(error: BaseException | None) -> None:
    """SQLAlchemy puts a failed statement's parameters (a child's name, say) into its message: not here."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if hasattr(error, "hide_parameters") and hasattr(error, "statement"):
            error.hide_parameters = True
        error = error.__cause__ or error.__context__


# PostgreSQL adds the failing row or key to its errors ("DETAIL:  Key (email)=(...) already exists",
# "Failing row contains (...)"): the values of a child's record. Those lines never reach a log.
_SERVER_DETAIL = re.compile(r"^(\s*(?:DETAIL|CONTEXT|HINT|WHERE)):.*$", re.MULTILINE)
_FAILING_ROW = re.compile(r"(Failing row contains|Key \([^)]*\)=)\s*\(.*?\)(?= |$|\.)", re.MULTILINE)


def without_row_values(text: str) -> str:
    text = _SERVER_DETAIL.sub(r"\1: (values hidden)", text)
    return _FAILING_ROW.sub(r"\1 (values hidden)", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": without_row_values(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_ids.current()
        if request_id:
            line["request_id"] = request_id
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            for key, value in event.items():
                if key not in _CORE:
                    line[str(key)] = value
        if record.exc_info:
            _hide_statement_values(record.exc_info[1])
            line["error"] = without_row_values(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the same content, on one readable line."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info:
            _hide_statement_values(record.exc_info[1])
        text = without_row_values(super().format(record))
        request_id = getattr(record, "request_id", None) or request_ids.current()
        event = getattr(record, "event", None)
        fields = [f"{k}={v}" for k, v in event.items() if k not in _CORE] if isinstance(event, dict) else []
        suffix = " ".join(fields + ([f"request_id={request_id}"] if request_id else []))
        first, _, rest = text.partition("\n")
        return f"{first} {suffix}".rstrip() + (f"\n{rest}" if rest else "")


class _DevServerRequests(logging.Filter):
    """Drops the development server's own request lines: they carry the query string (a search's
    name and date of birth); eCAF's request line replaces them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "werkzeug" and record.levelno == logging.INFO and '] "' in record.getMessage())


def configure(json: bool | None = None, *, level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send every logger's lines to `stream` (standard error) as JSON or text (None: `wants_json()`).

    Replaces what an earlier call (or logging.basicConfig) installed on the root logger, and leaves
    other handlers alone. Returns the handler."""
    stream = stream if stream is not None else sys.stderr
    problem = None
    try:
        as_json = wants_json(stream=stream) if json is None else json
    except ValueError as exc:  # a typing mistake in a setting must not stop the service: say so, in JSON
        as_json, problem = True, str(exc)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "ecaf", False) or (type(old) is logging.StreamHandler
                                           and old.stream in (sys.stderr, sys.stdout)):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.ecaf = True
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("spiff").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin at every look
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _DevServerRequests) for f in werkzeug.filters):
        werkzeug.addFilter(_DevServerRequests())
    if problem:
        logging.getLogger(__name__).warning("%s: writing JSON lines", problem)
    return handler


def request_finished(*, method: str, endpoint: str | None, status: int, seconds: float,
                     user_id: int | None) -> None:
    """The one line a web request leaves: what was asked, by whom (an id), how it ended, how long it took."""
    REQUEST_LOGGER.info("request", extra={"event": {
        "method": method, "endpoint": endpoint or "none", "status": status,
        "duration_ms": round(max(0.0, seconds) * 1000, 1), "user_id": user_id}})
