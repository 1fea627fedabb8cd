"""Server-side sessions: the cookie holds a random token, the row holds everything else.

Rows make sign-out, the idle and absolute timeouts, "sign out everywhere" and an administrator's
revocation real: a revoked or expired row is never honoured again, whatever the browser keeps.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import CallbackDict
from werkzeug.exceptions import HTTPException

from app.clock import as_utc, now
from app.models import Organisation, User, WebSession
from app.web import flash_messages, request_db
from app.web.flash_messages import FLASHES
from app.api.paths import is_api_path

TOUCH_EVERY = timedelta(seconds=30)  # how stale last_seen_at may get before it is written again
# Asked on every request: built once (building it each time cost more than running it).
_SESSION_AND_USER = (select(WebSession, User).outerjoin(User, User.id == WebSession.user_id)
                     .where(WebSession.id == bindparam("row_id"))
                     .options(joinedload(User.organisation).joinedload(Organisation.authority)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, *, token: str | None = None, row: WebSession | None = None,
                 expired: bool = False):
        def on_update(session):
            session.modified = True

        super().__init__(initial or {}, on_update)
        self.token = token
        self.new = token is None
        self.modified = False
        self.expired = expired  # an earlier session ran out: the sign-in page says so
        self.user_id: int | None = row.user_id if row else None
        self.user: User | None = None  # the account as read with the row (detached), for the user loader
        self.authenticated_at = row.authenticated_at if row else None
        self.last_seen_at = row.last_seen_at if row else None
        self.created_at = row.created_at if row else None
        self.renew = False   # issue a new id (sign-in) and drop the old row
        self.ended = False   # sign-out: drop the row and the cookie
        # Messages for the next page live beside the data, in a cookie of their own (flash_messages.py).
        self.flashes: list = []
        self.flashes_changed = False

    # Flask keeps flashed messages under FLASHES; here they never touch the row's data.
    def __setitem__(self, key, value) -> None:
        if key == FLASHES:
            self.flashes, self.flashes_changed = list(value), True
            return
        super().__setitem__(key, value)

    def __getitem__(self, key):
        if key == FLASHES:
            if not self.flashes:
                raise KeyError(key)
            return self.flashes
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        return bool(self.flashes) if key == FLASHES else super().__contains__(key)

    def get(self, key, default=None):
        if key == FLASHES:
            return self.flashes or default
        return super().get(key, default)

    def clear(self) -> None:
        super().clear()
        if self.flashes:  # a restarted sign-in drops what was waiting, as it drops everything else
            self.flashes, self.flashes_changed = [], True

    def pop(self, key, *default):
        if key == FLASHES:
            if not self.flashes:
                if default:
                    return default[0]
                raise KeyError(key)
            taken, self.flashes, self.flashes_changed = self.flashes, [], True
            return taken
        return super().pop(key, *default)

    @property
    def row_id(self) -> str | None:
        """The id of this session's row (a digest of the cookie's token)."""
        return _digest(self.token) if self.token else None

    def sign_in(self, user_id: int) -> None:
        """A fresh session for the signed-in user; only messages waiting to be shown carry over."""
        flashes = self.get(FLASHES)
        self.clear()
        if flashes:
            self[FLASHES] = flashes
        self.user_id, self.user = user_id, None
        self.authenticated_at = now()
        self.renew = True
        self.modified = True

    def end(self) -> None:
        self.clear()
        self.ended = True
        self.flashes_changed = True  # what is flashed after this is for the sign-in page


# A form of fields (no files) of up to this size is read before the request's transaction begins.
SHORT_FORM_BYTES = 256 * 1024


def _body_read(request: Request) -> bool:
    """Read a short form's body now, before the request's transaction begins; False when the request
    has a body this leaves to the view (an upload, which the view may refuse unread by its size, or
    anything else), so the transaction must not stay open while the view reads it."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    length = request.content_length
    if request.mimetype != "application/x-www-form-urlencoded" or length is None or length > SHORT_FORM_BYTES:
        return False
    try:
        request.form  # parsed once and kept: the view and the CSRF check read it from here
    except HTTPException:
        return False  # malformed: the CSRF check meets the same error and answers it
    return True


class ServerSessionInterface(SessionInterface):
    def __init__(self, runtime):
        self.runtime = runtime

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.runtime.config.idle_timeout_minutes)

    @property
    def absolute(self) -> timedelta:
        return timedelta(hours=self.runtime.config.absolute_timeout_hours)

    def cookie_name(self, app: Flask) -> str:
        # The __Host- prefix pins the cookie to this host and path; browsers demand Secure with it.
        return "__Host-ecaf-session" if self.runtime.config.cookie_secure else "ecaf-session"

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        if is_api_path(request.path):
            return ServerSession()  # the JSON API authenticates every call: no cookie is read
        opened = self._open(app, request)
        opened.flashes = flash_messages.unseal(app.secret_key, opened.user_id,
                                               request.cookies.get(self._messages_cookie()))
        return opened

    def _messages_cookie(self) -> str:
        return flash_messages.cookie_name(self.runtime.config.cookie_secure)

    def _open(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(self.cookie_name(app))
        if not token or len(token) > 100:
            return ServerSession()
        # The request's transaction begins here and stays open for the view (request_db.py). A body is
        # read first: a slow or large upload must not hold the transaction (on SQLite, the write lock).
        shared = _body_read(request)
        db = request_db.session()
        # The row and its user (with what every page shows of them) in one statement: the request's
        # user loader (app/web/access.py) takes the user from here instead of reading it again.
        found = db.execute(_SESSION_AND_USER, {"row_id": _digest(token)}).first()
        row, user = found if found is not None else (None, None)
        if row is None or row.revoked_at is not None:
            db.rollback()
            return ServerSession(expired=row is not None)
        moment = now()
        if moment - as_utc(row.last_seen_at) > self.idle or moment - as_utc(row.created_at) > self.absolute:
            row.revoked_at = moment
            db.commit()
            return ServerSession(expired=row.user_id is not None)
        seen = as_utc(row.last_seen_at)
        if moment - seen > TOUCH_EVERY:
            # Written now, in the request's transaction, rather than in one of its own at the end.
            db.execute(update(WebSession).where(WebSession.id == row.id, WebSession.revoked_at.is_(None))
                       .values(last_seen_at=moment), execution_options={"synchronize_session": False})
            seen = moment
        if not shared:
            db.commit()  # a body the view has yet to read: the view begins its own transaction
        db.expunge_all()
        opened = ServerSession(row.data, token=token, row=row)
        opened.user, opened.last_seen_at = user, seen
        return opened

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        if is_api_path(request.path):
            return  # nor set
        name = self.cookie_name(app)
        cookie = dict(httponly=True, secure=self.runtime.config.cookie_secure, samesite="Lax", path="/")
        if session.flashes_changed:
            self._save_messages(app, session, response, cookie)
        moment = now()
        # Whatever the request's transaction still holds is committed with what is written here.
        with request_db.transaction() as db:
            if session.token and (session.ended or session.renew):
                db.execute(update(WebSession).where(WebSession.id == session.row_id)
                           .values(revoked_at=moment))
            if session.ended:
                response.delete_cookie(name, path="/", secure=cookie["secure"], httponly=True, samesite="Lax")
                return
            if session.new or session.renew:
                if not session.modified or (not dict(session) and session.user_id is None):
                    return  # nothing worth a row yet
                token = secrets.token_urlsafe(32)
                db.add(WebSession(id=_digest(token), user_id=session.user_id, data=dict(session),
                                  created_at=moment, authenticated_at=session.authenticated_at,
                                  last_seen_at=moment, address=client_address(), user_agent=_agent()))
                response.set_cookie(name, token, **cookie)
                return
            changes = {}
            if session.modified:
                changes["data"] = dict(session)
            if session.modified or moment - as_utc(session.last_seen_at) > TOUCH_EVERY:
                changes["last_seen_at"] = moment
            if changes:
                db.execute(update(WebSession).where(WebSession.id == session.row_id,
                                                    WebSession.revoked_at.is_(None)).values(**changes))

    def _save_messages(self, app: Flask, session: ServerSession, response: Response, cookie: dict) -> None:
        owner = None if session.ended else session.user_id  # after sign-out they are for the sign-in page
        sealed = flash_messages.seal(app.secret_key, owner, session.flashes)
        if sealed is None:
            response.delete_cookie(self._messages_cookie(), path="/", secure=cookie["secure"], httponly=True,
                                   samesite="Lax")
        else:
            response.set_cookie(self._messages_cookie(), sealed, max_age=flash_messages.LIFETIME_SECONDS, **cookie)


def client_address() -> str | None:
    """The client's address as recorded with sessions, failed sign-ins and the audit trail."""
    return (request.remote_addr or "")[:64] or None


def _agent() -> str | None:
    return (request.user_agent.string or "")[:300] or None


def end_all_sessions(db, user_id: int) -> int:
    """Revoke every session of a user (sign out everywhere, password change, administrator action)."""
    result = db.execute(update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
                        .values(revoked_at=now()))
    return result.rowcount
