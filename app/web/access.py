"""Who may reach which page. Every view declares its access; a view that declares none is refused.

- `public`: anyone (the support page, health check).
- `signing_in`: the sign-in steps, reachable before both factors are given.
- `signed_in`: both factors given (what most pages need).
- `roles(...)`: signed in with one of these roles.

What a user may do to a particular episode, task or child is decided by `app.policy`.
"""
from __future__ import annotations

from typing import Callable, NoReturn
from urllib.parse import urlsplit

from flask import Flask, abort, flash, g, redirect, request, session, url_for

from sqlalchemy.orm import joinedload

from app import audit, policy
from app.clock import now
from app.models import Organisation, User
from app.web import runtime

PUBLIC, SIGNING_IN, SIGNED_IN = "public", "signing_in", "signed_in"


def _declare(view: Callable, access) -> Callable:
    view.access = access
    return view


def public(view: Callable) -> Callable:
    return _declare(view, PUBLIC)


def signing_in(view: Callable) -> Callable:
    return _declare(view, SIGNING_IN)


def signed_in(view: Callable) -> Callable:
    return _declare(view, SIGNED_IN)


def roles(*names: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        return _declare(view, frozenset(names))
    return decorate


def access_of(app: Flask, endpoint: str | None):
    view = app.view_functions.get(endpoint or "")
    if endpoint == "static":
        return PUBLIC
    return getattr(view, "access", None)


def safe_next(target: str | None) -> str | None:
    """Only a path on this site (never another host) may be a redirect target after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def current_user() -> User | None:
    return g.get("user")


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


def install(app: Flask) -> None:
    @app.before_request
    def gate():
        g.user = None
        access = access_of(app, request.endpoint)
        if request.endpoint is None:
            return None  # a 404 or 405 follows
        if access is None:
            abort(404)  # a view without declared access is never served
        if access == PUBLIC and request.endpoint == "static":
            return None
        user_id = getattr(session, "user_id", None)
        if user_id is not None:
            with runtime().db.session() as db:
                user = db.get(User, user_id, options=[
                    joinedload(User.organisation).joinedload(Organisation.authority)])
                # An account suspended mid-session (vetting expired, disabled, locked) is signed out.
                if policy.is_usable(user, now().date()):
                    db.expunge(user)
                    g.user = user
            if g.user is None:
                session.end()
        if access in (PUBLIC, SIGNING_IN):
            return None
        if g.user is None:
            if getattr(session, "expired", False):
                flash("You were signed out because your session ended. Sign in again to continue.", "expired")
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for("auth.sign_in", next=safe_next(target and target.rstrip("?"))))
        if isinstance(access, frozenset) and g.user.role not in access:
            with runtime().db.session() as db:
                audit.record(db, "access_denied", actor_id=g.user.id, path=request.path,
                             asked_for=f"a page for {' or '.join(sorted(access))}")
            abort(403)
        return None

    @app.context_processor
    def user_in_templates():
        return {"current_user": g.get("user")}

