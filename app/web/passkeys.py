"""Passkeys: adding, naming and removing them on *Your account*; signing in with one instead of a code;
adding one at sign-in when the authority requires them. The rules are in app/accounts/passkeys.py."""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from app import outbox
from app.accounts import passkeys, sign_in
from app.clock import now
from app.models import User
from app.web import access, auth, runtime
from app.web.access import fresh_sign_in_required, signed_in, signed_in_recently, signing_in
from app.web.sessions import client_address

bp = Blueprint("passkeys", __name__)

SETUP_STEP = "passkey_setup"
NO_CREDENTIAL = ("Your browser did not send a passkey. Use a browser that supports passkeys, with JavaScript "
                 "switched on, and try again.")


def _me() -> User:
    return access.current_user()


def _rp() -> passkeys.RelyingParty | None:
    return passkeys.relying_party(runtime().config, request.host_url)


def _session_id() -> str | None:
    return getattr(session, "row_id", None)


def _options(options_json: str) -> dict:
    return json.loads(options_json)


# ---------------------------------------------------------------- Your account: passkeys


def _index_page(errors: dict | None = None, name: str = "", status: int = 200):
    me, rp, fresh = _me(), _rp(), signed_in_recently()
    with runtime().db.session() as db:
        rows = passkeys.passkeys_of(db, me.id)
        options = None
        if rp is not None and fresh and _session_id():
            options = _options(passkeys.registration_options(db, rp, db.get(User, me.id), _session_id()))
        required = passkeys.is_required(db, me)
        for row in rows:
            db.expunge(row)
    return render_template("passkeys/index.html", passkeys=rows, options=options, available=rp is not None,
                           fresh=fresh, required=required, errors=errors or {}, name=name,
                           error_title=bool(errors)), status


@bp.get("/account/passkeys")
@signed_in
def index():
    return _index_page()


@bp.post("/account/passkeys")
@signed_in
@fresh_sign_in_required
def register():
    name = request.form.get("name", "")
    if len(name) > passkeys.MAX_NAME:
        return _index_page({"name": f"Enter a name of {passkeys.MAX_NAME} characters or fewer"}, name, 400)
    rp, credential = _rp(), request.form.get("credential", "")
    if rp is None or not credential:
        return _index_page({"credential": NO_CREDENTIAL}, name, 400)
    with runtime().db.session() as db:
        user = db.get(User, _me().id)
        if not name.strip():
            name = f"Passkey {len(passkeys.passkeys_of(db, user.id)) + 1}"
        try:
            added = passkeys.register(db, rp, user, _session_id(), credential, name)
        except passkeys.PasskeyRefused as refused:
            error = refused.message
        else:
            error, added_name = None, added.name
    if error:
        return _index_page({"credential": error}, name, 400)
    flash(f"Your passkey ‘{added_name}’ has been added. Next time you sign in you can use it instead of a code.",
          "success")
    return redirect(url_for("passkeys.index"))


def _own_or_404(db, passkey_id: int):
    passkey = passkeys.own_passkey(db, _me().id, passkey_id)
    if passkey is None:
        access.deny(db, "a passkey that is not the user's own")
    return passkey


@bp.route("/account/passkeys/<int:passkey_id>/name", methods=["GET", "POST"])
@signed_in
def rename(passkey_id: int):
    error = None
    with runtime().db.session() as db:
        passkey = _own_or_404(db, passkey_id)
        name = request.form.get("name", passkey.name)
        if request.method == "POST":
            if not name.strip():
                error = "Enter a name for the passkey"
            elif len(name) > passkeys.MAX_NAME:
                error = f"Enter a name of {passkeys.MAX_NAME} characters or fewer"
            else:
                passkeys.rename(db, passkey, name, _me().id)
                flash("The passkey has been renamed.", "success")
                return redirect(url_for("passkeys.index"))
        db.expunge(passkey)
    return render_template("passkeys/rename.html", passkey=passkey, name=name, error=error,
                           error_title=error), 400 if error else 200


@bp.route("/account/passkeys/<int:passkey_id>/remove", methods=["GET", "POST"])
@signed_in
@fresh_sign_in_required
def remove(passkey_id: int):
    with runtime().db.session() as db:
        passkey = _own_or_404(db, passkey_id)
        if request.method == "POST":
            name = passkey.name
            passkeys.remove(db, passkey, _me().id)
            flash(f"The passkey ‘{name}’ has been removed. Remove it from your device too.", "success")
            return redirect(url_for("passkeys.index"))
        last = len(passkeys.passkeys_of(db, _me().id)) == 1
        required = passkeys.is_required(db, _me())
        db.expunge(passkey)
    return render_template("passkeys/remove.html", passkey=passkey, last=last, required=required)


# ---------------------------------------------------------------- signing in with a passkey


def offered_to(db, user_id: int) -> bool:
    """The second-factor page offers a passkey: passkeys work here and the user has one."""
    return _rp() is not None and passkeys.has_passkey(db, user_id)


@bp.app_context_processor
def passkey_offer():
    def offer() -> bool:
        user_id = session.get("pending", {}).get("user_id") if request.endpoint == "auth.code" else None
        if user_id is None:
            return False
        with runtime().db.session() as db:
            return offered_to(db, user_id)
    return {"passkey_offer": offer}


@bp.route("/sign-in/passkey", methods=["GET", "POST"])
@signing_in
def sign_in_with_passkey():
    user_id = auth._pending_or_restart("code")
    if user_id is None:
        return redirect(url_for("auth.sign_in"))
    rp, error, cloned, queued = _rp(), None, False, []
    with runtime().db.session() as db:
        user = db.get(User, user_id)
        if not offered_to(db, user.id):
            return redirect(url_for("auth.code"))
        if request.method == "POST":
            credential = request.form.get("credential", "")
            if not credential:
                error = NO_CREDENTIAL
            else:
                outcome, refusal = passkeys.check_passkey(db, runtime().config, rp, user, _session_id(), credential,
                                                          client_address())
                if outcome.ok:
                    return auth._finish_sign_in(db, user)
                error, queued = outcome.message, outcome.queued
                cloned = refusal is not None and refusal.why == "sign_count_went_back"
        options = _options(passkeys.authentication_options(db, rp, user, _session_id()))
    outbox.deliver_soon(runtime(), queued)  # an "account locked" email, once committed
    return render_template("passkeys/sign_in.html", options=options, error=error, cloned=cloned,
                           error_title=error), 400 if error else 200


# ---------------------------------------------------------------- a passkey required at sign-in


def setup_needed(db, user: User) -> bool:
    """The authority requires passkeys of this user's role and the user has none yet."""
    return _rp() is not None and passkeys.is_required(db, user) and not passkeys.has_passkey(db, user.id)


def lead_to_setup():
    """Both factors given, but a passkey is required first: the sign-in waits on the set-up page."""
    session["pending"] = {**session["pending"], "step": SETUP_STEP, "at": now().isoformat()}
    return redirect(url_for("passkeys.set_up"))


@bp.route("/sign-in/set-up-passkey", methods=["GET", "POST"])
@signing_in
def set_up():
    user_id = auth._pending_or_restart(SETUP_STEP)
    rp = _rp()
    if user_id is None or rp is None:
        return redirect(url_for("auth.sign_in"))
    error, name = None, request.form.get("name", "")
    with runtime().db.session() as db:
        user = db.get(User, user_id)
        if request.method == "POST":
            credential = request.form.get("credential", "")
            if len(name) > passkeys.MAX_NAME:
                error = f"Enter a name of {passkeys.MAX_NAME} characters or fewer"
            elif not credential:
                error = NO_CREDENTIAL
            else:
                try:
                    passkeys.register(db, rp, user, _session_id(), credential, name.strip() or "Passkey 1")
                except passkeys.PasskeyRefused as refused:
                    error = refused.message
                else:
                    if sign_in.may_sign_in(user):
                        flash("Your passkey has been added. Next time you sign in you can use it instead of a code.",
                              "success")
                        return auth._finish_sign_in(db, user)
                    return redirect(url_for("auth.sign_in"))
        options = _options(passkeys.registration_options(db, rp, user, _session_id()))
    return render_template("passkeys/set_up.html", options=options, error=error, name=name,
                           error_title=error), 400 if error else 200
