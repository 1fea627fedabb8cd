"""Who may reach which page. Every view declares its access; a view that declares none is refused.

- `public`: anyone (the support page, health check).
- `signing_in`: the sign-in steps, reachable before both factors are given.
- `signed_in`: both factors given (what most pages need).
- `roles(...)`: signed in with one of these roles.

The signed-in user is Flask-Login's `current_user`, loaded from the server-side session row
(`app.web.sessions`): a row that is revoked, idle or too old signs nobody in. Sensitive actions
(password change, authenticator reset, account administration, passkey registration) also need
`fresh_sign_in_required`: a sign-in within `ECAF_FRESH_SIGN_IN_MINUTES`, otherwise the user is
asked to sign in again.

What a user may do to a particular episode, task or child is decided by `app.policy`.
"""
from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import Callable, NoReturn
from urllib.parse import unquote, urlsplit

from flask import Flask, abort, flash, redirect, request, session, url_for
from flask_login import LoginManager, login_required
from flask_login import current_user as signed_in_user

from sqlalchemy.orm import joinedload

from app import audit, policy
from app.clock import as_utc, now
from app.models import Organisation, User
from app.web import request_db, runtime

PUBLIC, SIGNING_IN, SIGNED_IN = "public", "signing_in", "signed_in"
API_CLIENT = "api_client"  # the JSON API: a client system's credentials on every call, never a session


def _declare(view: Callable, access) -> Callable:
    view.access = access
    return view


def public(view: Callable) -> Callable:
    return _declare(view, PUBLIC)


def api_client(view: Callable) -> Callable:
    return _declare(view, API_CLIENT)


def signing_in(view: Callable) -> Callable:
    return _declare(view, SIGNING_IN)


def signed_in(view: Callable) -> Callable:
    return _declare(login_required(view), SIGNED_IN)


def roles(*names: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        return _declare(login_required(view), frozenset(names))
    return decorate


def access_of(app: Flask, endpoint: str | None):
    view = app.view_functions.get(endpoint or "")
    if endpoint == "static":
        return PUBLIC
    return getattr(view, "access", None)


def _local_path(target: str) -> bool:
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in target):
        return False  # browsers drop tabs and newlines: "/\t/host" would become "//host"
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc)


def safe_next(target: str | None) -> str | None:
    """Only a path on this site (never another host) may be a redirect target after sign-in: it starts
    with one "/", holds no backslash or control character, no scheme or host, and stays so when its
    percent-encoding is undone ("/%5C%5Chost", "/%2F%2Fhost" are refused)."""
    if not target or len(target) > 2000:
        return None
    seen = target
    for _ in range(4):
        if not _local_path(seen):
            return None
        decoded = unquote(seen)
        if decoded == seen:
            return target
        seen = decoded
    return None  # encoded more deeply than any real link


def current_user() -> User:
    """Flask-Login's signed-in user as the object itself (kept for the many views that call it)."""
    return signed_in_user._get_current_object()


def signed_in_recently() -> bool:
    """Whether this session's sign-in (both factors) was within the configured fresh-sign-in time."""
    at = getattr(session, "authenticated_at", None)
    limit = timedelta(minutes=runtime().config.fresh_sign_in_minutes)
    return signed_in_user.is_authenticated and at is not None and now() - as_utc(at) <= limit


def _back_to() -> str | None:
    """Where to return after signing in again: this page for a GET, the page the form was on for a POST."""
    if request.method == "GET":
        return safe_next(request.full_path.rstrip("?"))
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host:
        return None
    return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""))


def fresh_sign_in_required(view: Callable) -> Callable:
    """For sensitive actions: a session signed in longer ago than `fresh_sign_in_minutes` is sent to
    sign in again (nothing is changed) and comes back to the page afterwards. Put it under the
    access declaration (`@roles(...)`/`@signed_in`)."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not signed_in_user.is_authenticated:
            return login_manager.unauthorized()
        if not signed_in_recently():  # the sign-in page says why (`again`)
            return redirect(url_for("auth.sign_in", next=_back_to(), again=1))
        return view(*args, **kwargs)
    return wrapper


def deny(session, asked_for: str, status: int = 404) -> NoReturn:
    """Refuse as if the thing did not exist (404 unless told otherwise), keeping the denial in the
    audit trail: the row is committed before the error response is raised."""
    audit.record(session, "access_denied", actor_id=current_user().id, episode_id=None, asked_for=asked_for,
                 path=request.path)
    session.commit()
    abort(status)


def episode_or_404(session, episode_id: int, asked_for: str, allowed: Callable | None = None):
    """The episode if the user may open it and `allowed(episode)` says yes; otherwise `deny`."""
    episode = policy.visible_episode(session, current_user(), episode_id)
    if episode is None or (allowed is not None and not allowed(episode)):
        deny(session, asked_for)
    return episode


login_manager = LoginManager()
# Session ids are renewed at sign-in and rows hold the address and browser; freshness is by sign-in
# time (`signed_in_recently`), so Flask-Login's own session protection and remember-me stay off.
login_manager.session_protection = None


@login_manager.request_loader
def load_user_from_session_row(_request) -> User | None:
    """The user of this request's server-side session row, while the account may be used: one
    suspended mid-session (vetting expired, disabled, locked) is signed out."""
    user_id = getattr(session, "user_id", None)
    if user_id is None:
        return None
    user = getattr(session, "user", None)
    if user is None or user.id != user_id:  # signed in during this request: read the account now
        with request_db.transaction() as db:
            user = db.get(User, user_id, options=[joinedload(User.organisation).joinedload(Organisation.authority)])
    if policy.is_usable(user, now().date()):
        return user
    session.end()
    return None


@login_manager.unauthorized_handler
def _to_sign_in():
    if getattr(session, "expired", False):
        flash("You were signed out because your session ended. Sign in again to continue.", "expired")
    target = request.full_path if request.method == "GET" else None
    return redirect(url_for("auth.sign_in", next=safe_next(target and target.rstrip("?"))))


def install(app: Flask) -> None:
    login_manager.init_app(app)

    @app.before_request
    def gate():
        access = access_of(app, request.endpoint)
        if request.endpoint is None:
            return None  # a 404 or 405 follows
        if access is None:
            abort(404)  # a view without declared access is never served
        if access == API_CLIENT or (access == PUBLIC and request.endpoint == "static"):
            return None
        user = current_user()  # loads the session row's user (or signs out a suspended account)
        if access in (PUBLIC, SIGNING_IN):
            return None
        if not user.is_authenticated:
            return login_manager.unauthorized()
        if isinstance(access, frozenset) and user.role not in access:
            with request_db.transaction() as db:
                audit.record(db, "access_denied", actor_id=user.id, path=request.path,
                             asked_for=f"a page for {' or '.join(sorted(access))}")
            abort(403)
        return None


