"""Signing in (password, then a one-time code), enrolling an authenticator, signing out, the account page."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from app import audit, outbox
from app.accounts import passwords, recovery, sign_in, totp
from app.clock import as_utc, now
from app.models import User, WebSession
from app.web import runtime
from app.web.access import current_user, fresh_sign_in_required, safe_next, signed_in, signed_in_recently, signing_in
from app.web.sessions import client_address, end_all_sessions

bp = Blueprint("auth", __name__)

PENDING_FOR = timedelta(minutes=5)  # how long the password step stays good while the code is entered



def _pending_user_id() -> int | None:
    """The user who gave a right password in the last few minutes, awaiting the second factor."""
    pending = session.get("pending")
    if not pending:
        return None
    started = pending.get("at")
    if started is None or now() - as_utc(datetime.fromisoformat(started)) > PENDING_FOR:
        session.pop("pending", None)
        return None
    return pending.get("user_id")


def _finish_sign_in(db, user: User):
    """Both factors given: a new session id, the sign-in recorded, on to where the user was going."""
    target = safe_next(session.get("pending", {}).get("next"))
    session.sign_in(user.id)
    audit.record(db, "signed_in", actor_id=user.id, address=client_address())
    return redirect(target or url_for("tasks.home"))


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
@signing_in
def sign_in_page():
    # Signed in already: on to the page asked for, unless it wants a fresher sign-in than this one.
    again = current_user().is_authenticated and request.args.get("again") and not signed_in_recently()
    if current_user().is_authenticated and not again:
        return redirect(safe_next(request.args.get("next")) or url_for("tasks.home"))
    errors, username = {}, request.form.get("username", "")
    if request.method == "POST":
        password = request.form.get("password", "")
        if not username.strip():
            errors["username"] = "Enter your username"
        if not password:
            errors["password"] = "Enter your password"
        if not errors:
            with runtime().db.session() as db:
                outcome = sign_in.check_password(db, username, password, client_address(), runtime().config)
                if outcome.ok:
                    user = outcome.user
                    step = "code" if user.totp_enrolled_at else "enrol"
                    target = safe_next(request.args.get("next"))
                    session.clear()
                    session.renew = True  # a new id once the password is right, and again after the code
                    session["pending"] = {"user_id": user.id, "at": now().isoformat(), "step": step,
                                          "next": target}
            if outcome.ok:
                return redirect(url_for("auth.code" if step == "code" else "auth.enrol"))
            errors["password"] = outcome.message
    return render_template("auth/sign_in.html", errors=errors, username=username, again=again,
                           expired=getattr(session, "expired", False)), 400 if errors else 200


def _pending_or_restart(step: str) -> int | None:
    """The user waiting for this sign-in step, or None (with a message) when the password step ran out."""
    user_id = _pending_user_id()
    if user_id is None:
        flash("Sign in again: the first step ran out of time.", "expired")
        return None
    return user_id if session["pending"].get("step") == step else None


def _second_factor(template: str, check):
    """A page that takes the second factor; `check(db, user)` gives the sign_in.Outcome."""
    user_id = _pending_or_restart("code")
    if user_id is None:
        return redirect(url_for("auth.sign_in"))
    error = None
    if request.method == "POST":
        with runtime().db.session() as db:
            user = db.get(User, user_id)
            outcome = check(db, user)
            from app.web import passkeys as passkey_pages  # imports this module: imported when first needed
            if outcome.ok and passkey_pages.setup_needed(db, user):
                return passkey_pages.lead_to_setup()  # the authority requires a passkey: one is added first
            if outcome.ok:
                return _finish_sign_in(db, user)
            error = outcome.message
        outbox.deliver_soon(runtime(), getattr(outcome, "queued", []))  # an "account locked" email, once committed
    return render_template(template, error=error), 400 if error else 200


@bp.route("/sign-in/code", methods=["GET", "POST"])
@signing_in
def code():
    return _second_factor("auth/code.html", lambda db, user: sign_in.check_code(
        db, runtime().config, user, request.form.get("code", ""), client_address()))


@bp.route("/sign-in/recovery-code", methods=["GET", "POST"])
@signing_in
def recovery_code():
    def check(db, user):
        outcome = sign_in.check_recovery_code(db, user, request.form.get("recovery_code", ""), client_address(),
                                              runtime().config)
        if outcome.ok:
            flash(f"You signed in with a recovery code. You have {recovery.remaining(db, user)} left. If you lost "
                  "your authenticator, ask the eCAF administrator to reset it.")
        return outcome

    return _second_factor("auth/recovery_code.html", check)


@bp.route("/sign-in/set-up-authenticator", methods=["GET", "POST"])
@signing_in
def enrol():
    """First sign-in: scan the QR code (or type the key), prove it works with a code, keep the recovery codes."""
    user_id = _pending_or_restart("enrol")
    if user_id is None:
        return redirect(url_for("auth.sign_in"))
    config = runtime().config
    secret = session.get("enrol_secret")
    if not secret:
        secret = session["enrol_secret"] = totp.new_secret()
    error = None
    with runtime().db.session() as db:
        user = db.get(User, user_id)
        if request.method == "POST":
            step = totp.matching_step(secret, request.form.get("code", ""))
            if step is not None and sign_in.may_sign_in(user):
                user.totp_secret = totp.seal(config, secret)
                user.totp_enrolled_at = now()
                user.totp_last_step = step
                codes = recovery.issue(db, user)
                audit.record(db, "authenticator_enrolled", actor_id=user.id)
                session.pop("enrol_secret", None)
                response = _finish_sign_in(db, user)
                # Shown once, in this response only: the codes are never stored in a readable form.
                return render_template("auth/recovery_codes.html", codes=codes,
                                       next_url=response.location, first_time=True)
            error = "Enter the 6-digit code your authenticator app shows for eCAF"
        qr = totp.qr_code_svg(secret, user.email)
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("auth/enrol.html", qr=qr, key=spaced, error=error), 400 if error else 200


@bp.post("/sign-out")
@signing_in
def sign_out():
    user = current_user()
    if user.is_authenticated:
        with runtime().db.session() as db:
            audit.record(db, "signed_out", actor_id=user.id)
    session.end()
    flash("You have signed out.", "success")
    return redirect(url_for("auth.sign_in"))


@bp.post("/account/sign-out-everywhere")
@signed_in
def sign_out_everywhere():
    user = current_user()
    with runtime().db.session() as db:
        count = end_all_sessions(db, user.id)
        audit.record(db, "signed_out_everywhere", actor_id=user.id, sessions=count)
    session.end()
    flash("You have signed out on every device.", "success")
    return redirect(url_for("auth.sign_in"))


@bp.get("/account")
@signed_in
def account():
    user = current_user()
    with runtime().db.session() as db:
        sessions = db.scalars(select(WebSession).where(WebSession.user_id == user.id,
                                                       WebSession.revoked_at.is_(None))
                              .order_by(WebSession.last_seen_at.desc())).all()
        left = recovery.remaining(db, db.get(User, user.id))
        rows = [{"address": s.address, "agent": s.user_agent, "since": s.authenticated_at or s.created_at,
                 "seen": s.last_seen_at, "this": s.id == session.row_id} for s in sessions]
    return render_template("auth/account.html", sessions=rows, recovery_left=left)


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in
@fresh_sign_in_required
def change_password():
    errors = {}
    if request.method == "POST":
        form = request.form
        with runtime().db.session() as db:
            user = db.get(User, current_user().id)
            if not passwords.verify_password(user.password_hash, form.get("current_password", "")):
                errors["current_password"] = "Enter your current password"
            new = form.get("new_password", "")
            problem = passwords.password_problem(new, context_words=(user.username, user.full_name,
                                                                     user.email.split("@")[0]))
            if problem:
                errors["new_password"] = problem
            elif new != form.get("confirm_password", ""):
                errors["confirm_password"] = "Enter the same new password twice"
            if not errors and not totp.accept_code(db, runtime().config, user, form.get("code", "")):
                errors["code"] = sign_in.WRONG_CODE
            if not errors:
                user.password_hash = passwords.hash_password(new)
                user.password_changed_at = now()
                end_all_sessions(db, user.id)
                audit.record(db, "password_changed", actor_id=user.id)
        if not errors:
            session.sign_in(current_user().id)  # this device stays signed in with a new session id
            flash("Your password has been changed. You have been signed out on every other device.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/change_password.html", errors=errors), 400 if errors else 200
