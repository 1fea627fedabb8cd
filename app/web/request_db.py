"""The request's own database session: the session row, the account, the access gate and what the
view reads share one transaction, begun when the session row is read (app/web/sessions.py).

On SQLite every transaction takes the write lock at its start (BEGIN IMMEDIATE, app/db.py), so the
request's transaction is always ended before any other begins in this request (an engine step's,
or a view's own `db.session()`): the database calls `end_transaction` first. A view that steps
therefore reads what it needs in `transaction()` before the step and takes anything it shows afterwards
from the step's result, so a completion is this read transaction and the step's own.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Flask, g, has_app_context
from sqlalchemy.orm import Session

from app.web import runtime

_KEY = "request_db_session"


def session() -> Session:
    """This request's session (made on first use); its transaction begins with its first statement."""
    found = g.get(_KEY)
    if found is None:
        found = runtime().db.sessions()
        setattr(g, _KEY, found)
    return found


@contextmanager
def transaction() -> Iterator[Session]:
    """The request's session for a block of work, in the transaction the request began if that is
    still open: committed when the block ends (rolled back on an error), its objects then detached as
    a closed session's are, so nothing read here is taken for current after a step."""
    current = session()
    try:
        yield current
        current.commit()
    except BaseException:
        current.rollback()
        raise
    finally:
        current.close()


def end_transaction() -> None:
    """Commit what the request's transaction holds, if one is open (before another transaction begins)."""
    found = g.get(_KEY) if has_app_context() else None
    if found is not None and found.in_transaction():
        found.commit()


def install(app: Flask) -> None:
    runtime_db = app.extensions["ecaf"].db
    runtime_db.before_session = end_transaction

    @app.teardown_request
    def close(_error=None):
        found = g.pop(_KEY, None)
        if found is not None:
            found.close()  # whatever was not committed (a request that failed) is rolled back
