"""Account management for administrators, the one-time set-password page and the public application form."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import outbox, policy
from app.accounts import throttle, vetting
from app.clock import now
from app.models import VETTING_TYPES, User
from app.services import account_applications as queue
from app.services import accounts as service
from app.services import password_links
from app.web import runtime
from app.web.access import current_user, deny, fresh_sign_in_required, public, roles
from app.web.sessions import client_address
from app.web.vetting import vetting_from
from app.web.form_input import text

bp = Blueprint("accounts", __name__)

# The actions on one account: endpoint -> (service action, button, what it does).
ACTIONS = {
    "disable": ("disable", "Disable the account",
                "Signs the person out everywhere at once. They cannot sign in until the account is enabled."),
    "enable": ("enable", "Enable the account", "The person can sign in again while their vetting is current."),
    "unlock": ("unlock", "Unlock the account", "Clears the failed sign-ins that locked it."),
    "revoke_sessions": ("revoke_sessions", "Sign out everywhere", "Ends every session of this person now."),
    "reset_authenticator": ("reset_authenticator", "Reset the authenticator",
                            "Removes their authenticator and recovery codes and signs them out. They set up a "
                            "new authenticator when they next sign in."),
    "send_password_link": ("reset_password", "Email a password link",
                           "Emails the person a link to set a new password. It works once, within "
                           f"{password_links.RESET_LINK_HOURS} hours, and earlier links stop working. You never see it."),
}
ROLE_HINTS = {"practitioner": "Starts and works on CAFs for children they work with.",
              "administrator": "Manages accounts and the CAFs of your local authority.",
              "process_owner": "Maintains the CAF process model.",
              "service_team": "Runs the service; sees no CAF content."}


def _link_for(token: str) -> str:
    return url_for("accounts.reset_password", token=token, _external=True)


def _deliver(message_ids: list[int]) -> None:
    """Called after the commit, so the job finds the messages."""
    outbox.deliver_soon(runtime(), message_ids)


def _account_or_404(session, user_id: int) -> User:
    """An account of the administrator's own authority; any other answers 404, and the attempt is audited."""
    user = service.account_of(session, current_user(), user_id)
    return user if user is not None else deny(session, f"account {user_id}")


# ---------------------------------------------------------------- reading the forms

def _details_from(form) -> tuple[dict, service.AccountDetails]:
    typed = {"full_name": text(form, "full_name", 200), "job_title": text(form, "job_title", 200),
             "phone": text(form, "phone", 40), "organisation_id": text(form, "organisation_id", 12),
             "role": text(form, "role", 20)}
    organisation_id = int(typed["organisation_id"]) if typed["organisation_id"].isdigit() else None
    return typed, service.AccountDetails(typed["full_name"], typed["job_title"], typed["phone"], organisation_id,
                                         typed["role"])


def _choices(session) -> dict:
    """Only the roles this administrator may give are offered (never process owner: a national role)."""
    return {"organisations": service.organisations_of(session, current_user()),
            "roles": service.offered_roles(current_user()), "role_labels": service.ROLE_LABELS,
            "role_hints": ROLE_HINTS, "national_hint": service.NATIONAL_ROLE_HINT, "types": VETTING_TYPES}


# ---------------------------------------------------------------- the list of accounts

@bp.get("/accounts")
@roles("administrator")
def index():
    words, state = text(request.args, "q", 100), text(request.args, "state", 20)
    state = state if state in service.STATES else ""
    with runtime().db.session() as session:
        users, total = service.find_accounts(session, current_user(), words, state)
        today = now().date()
        rows = [{"user": u, "states": service.states_of(u, today)} for u in users]
        return render_template("accounts/index.html", rows=rows, total=total, words=words, state=state,
                               states=service.STATES, pending=queue.pending_count(session, current_user()),
                               most=service.MAX_LISTED)


# ---------------------------------------------------------------- creating an account

@bp.route("/accounts/new", methods=["GET", "POST"])
@roles("administrator")
@fresh_sign_in_required
def create():
    errors, typed = {}, {"role": "practitioner"}
    with runtime().db.session() as session:
        if request.method == "POST":
            form = request.form
            typed, details = _details_from(form)
            typed.update(username=text(form, "username", 40).lower(), email=text(form, "email", 254).lower(),
                         reason=text(form, "reason", 1000))
            vetting_typed, check, errors = vetting_from(form)
            typed.update(vetting_typed)
            account = service.NewAccount(**vars(details), username=typed["username"], email=typed["email"])
            if check is None:
                errors.update(service.new_account_problems(session, current_user(), account))
                if not typed["reason"]:
                    errors["reason"] = "Enter why this account is needed"
            else:
                user, message_ids, errors = service.create_account(session, current_user(), account, check,
                                                                   typed["reason"], _link_for)
            if not errors:
                session.commit()
                _deliver(message_ids)
                flash(f"The account for {user.full_name} is created. A link to set their password has been "
                      f"emailed to {user.email}.", "success")
                return redirect(url_for("accounts.show", user_id=user.id))
        return render_template("accounts/new.html", errors=errors, typed=typed, hours=password_links.RESET_LINK_HOURS,
                               **_choices(session)), \
            400 if errors else 200


# ---------------------------------------------------------------- one account

def _applicable(user: User, live: int) -> dict[str, bool]:
    """Which actions would change something now (the others are left off the page)."""
    return {"disable": user.active, "enable": not user.active, "unlock": bool(user.locked_at or user.failed_sign_ins),
            "revoke_sessions": live > 0, "reset_authenticator": bool(user.totp_enrolled_at or user.totp_secret),
            "send_password_link": policy.may_get_password_link(user)}


def _show(session, user: User, *, errors=None, typed=None, status: int = 200):
    config = runtime().config
    today = now().date()
    live = service.live_sessions(session, user, timedelta(minutes=config.idle_timeout_minutes))
    yourself = user.id == current_user().id
    applicable = _applicable(user, live)
    shown = [endpoint for endpoint, (action, *_) in ACTIONS.items()
             if (typed and endpoint in typed)
             or (applicable[endpoint] and policy.may_act_on_account(current_user(), user, action))]
    return render_template(
        "accounts/show.html", account=user, states=service.states_of(user, today), state_labels=service.STATES,
        problem=user.vetting_problem(today), last_sign_in=service.last_sign_in(session, user), live=live,
        actions={endpoint: ACTIONS[endpoint] for endpoint in shown}, yourself=yourself,
        role_labels=service.ROLE_LABELS, types=VETTING_TYPES, reason_field=_reason_field,
        errors=errors or {}, typed=typed or {}), status


@bp.get("/accounts/<int:user_id>")
@roles("administrator")
def show(user_id: int):
    with runtime().db.session() as session:
        return _show(session, _account_or_404(session, user_id))


@bp.route("/accounts/<int:user_id>/edit", methods=["GET", "POST"])
@roles("administrator")
@fresh_sign_in_required
def edit(user_id: int):
    errors = {}
    with runtime().db.session() as session:
        user = _account_or_404(session, user_id)
        typed = {"full_name": user.full_name, "job_title": user.job_title, "phone": user.phone,
                 "organisation_id": str(user.organisation_id), "role": user.role}
        if request.method == "POST":
            typed, details = _details_from(request.form)
            if "role" not in request.form and not policy.may_grant_role(current_user(), user.role):
                typed["role"] = details.role = user.role  # shown read-only, so not posted: unchanged
            typed["reason"] = text(request.form, "reason", 1000)
            errors = service.edit_account(session, current_user(), user, details, typed["reason"])
            if not errors:
                name = user.full_name
                session.commit()
                flash(f"The details of {name} are saved.", "success")
                return redirect(url_for("accounts.show", user_id=user_id))
        return render_template("accounts/edit.html", account=user, errors=errors, typed=typed,
                               **_choices(session)), 400 if errors else 200


def _reason_field(endpoint: str) -> str:
    return f"{endpoint.replace('_', '-')}-reason"


def _act(user_id: int, endpoint: str):
    """One administrator's action: refused (400) without a reason or on their own sign-in, a no-op with a
    message when it does not apply, otherwise done; back to the account either way."""
    reason = text(request.form, "reason", 1000)
    with runtime().db.session() as session:
        user = _account_or_404(session, user_id)
        outcome = service.act(session, current_user(), user, ACTIONS[endpoint][0], reason, link_for=_link_for)
        if isinstance(outcome, str):
            return _show(session, user, errors={_reason_field(endpoint): outcome}, typed={endpoint: reason},
                         status=400)
    _deliver(outcome.message_ids)
    flash(outcome.message, "success" if outcome.changed else "info")
    return redirect(url_for("accounts.show", user_id=user_id))


@bp.post("/accounts/<int:user_id>/disable")
@roles("administrator")
@fresh_sign_in_required
def disable(user_id: int):
    return _act(user_id, "disable")


@bp.post("/accounts/<int:user_id>/enable")
@roles("administrator")
@fresh_sign_in_required
def enable(user_id: int):
    return _act(user_id, "enable")


@bp.post("/accounts/<int:user_id>/unlock")
@roles("administrator")
@fresh_sign_in_required
def unlock(user_id: int):
    return _act(user_id, "unlock")


@bp.post("/accounts/<int:user_id>/revoke-sessions")
@roles("administrator")
@fresh_sign_in_required
def revoke_sessions(user_id: int):
    return _act(user_id, "revoke_sessions")


@bp.post("/accounts/<int:user_id>/reset-authenticator")
@roles("administrator")
@fresh_sign_in_required
def reset_authenticator(user_id: int):
    return _act(user_id, "reset_authenticator")


@bp.post("/accounts/<int:user_id>/reset-password")
@roles("administrator")
@fresh_sign_in_required
def send_password_link(user_id: int):
    return _act(user_id, "send_password_link")


# ---------------------------------------------------------------- the one-time set-password page

@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    errors = {}
    with runtime().db.session() as session:
        reset = password_links.usable_reset(session, token)
        if reset is not None and request.method == "POST":
            errors = password_links.complete_reset(session, reset, request.form.get("new_password", ""),
                                            request.form.get("confirm_password", ""))
            if not errors:
                session.commit()
                flash("Your password is set, and you have been signed out on every device. Sign in with it now.",
                      "success")
                return redirect(url_for("auth.sign_in"))
            if "link" in errors:
                reset = None
    if reset is None:
        return render_template("accounts/reset_link_unusable.html", hours=password_links.RESET_LINK_HOURS), \
            400 if request.method == "POST" else 200
    return render_template("accounts/reset_password.html", errors=errors), 400 if errors else 200


APPLICATIONS_PER_HOUR = 5  # per address: enough for an office, too few to flood the administrators


@bp.after_request
def _no_referrer_for_reset_links(response):
    """The set-password page's address holds its token: the browser must not send it anywhere as a Referer."""
    if request.endpoint == "accounts.reset_password":
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


# ---------------------------------------------------------------- applying for an account

def _application_from(form) -> tuple[dict, queue.Application]:
    typed = {name: text(form, name, limit) for name, limit in (
        ("full_name", 200), ("email", 254), ("job_title", 200), ("phone", 40), ("organisation_id", 12),
        ("manager_name", 200), ("manager_email", 254), ("reason", 2000))}
    typed["email"], typed["manager_email"] = typed["email"].lower(), typed["manager_email"].lower()
    organisation_id = int(typed["organisation_id"]) if typed["organisation_id"].isdigit() else None
    return typed, queue.Application(**{**typed, "organisation_id": organisation_id})


@bp.route("/apply", methods=["GET", "POST"])
@public
def apply():
    errors, typed = {}, {}
    with runtime().db.session() as session:
        if request.method == "POST":
            typed, application = _application_from(request.form)
            if not throttle.allow(session, f"apply:{client_address()}", limit=APPLICATIONS_PER_HOUR,
                                  window=timedelta(hours=1)):
                session.commit()
                errors = {"full_name": "Too many applications have come from your network in the last hour. "
                                       "Try again later."}
                return render_template("accounts/apply.html", errors=errors, typed=typed,
                                       groups=queue.organisations_by_authority(session)), 429
            errors, message_ids = queue.apply(session, application)
            if not errors:
                session.commit()
                _deliver(message_ids)
                return render_template("accounts/applied.html")
        groups = queue.organisations_by_authority(session)
        return render_template("accounts/apply.html", errors=errors, typed=typed, groups=groups), \
            400 if errors else 200


@bp.get("/accounts/applications")
@roles("administrator")
def applications():
    with runtime().db.session() as session:
        pending = queue.pending_applications(session, current_user())
        return render_template("accounts/applications.html", applications=pending)


@bp.route("/accounts/applications/<int:application_id>", methods=["GET", "POST"])
@roles("administrator")
@fresh_sign_in_required
def application(application_id: int):
    errors, typed = {}, {"role": "practitioner"}
    with runtime().db.session() as session:
        found = queue.application_of(session, current_user(), application_id)
        if found is None:
            deny(session, f"account application {application_id}")
        typed["username"] = queue.suggested_username(session, found.email)
        if request.method == "POST":
            message_ids, errors, typed = _decision(session, found, typed)
            if not errors:
                session.commit()
                _deliver(message_ids)
                flash(f"The application from {found.full_name} is {found.status}.", "success")
                return redirect(url_for("accounts.applications"))
        return render_template("accounts/application.html", application=found, errors=errors, typed=typed,
                               **_choices(session)), 400 if errors else 200


def _decision(session, found, typed: dict) -> tuple[list[int], dict, dict]:
    form = request.form
    decision = form.get("decision", "")
    if decision == "reject":
        typed = {**typed, "reject_reason": text(form, "reject_reason", 1000)}
        message_ids, errors = queue.reject(session, current_user(), found, typed["reject_reason"])
        return message_ids, errors, typed
    if decision != "approve":
        return [], {"decision": "Choose whether to approve or reject the application"}, typed
    vetting_typed, check, errors = vetting_from(form)
    typed = {**typed, **vetting_typed, "username": text(form, "username", 40).lower(),
             "role": text(form, "role", 20), "approve_reason": text(form, "approve_reason", 1000)}
    if check is None:
        if not typed["approve_reason"]:
            errors["approve_reason"] = "Enter the reason for approving the application"
        refused = service.role_problem(session, current_user(), typed["role"], application_id=found.id)
        if refused:
            errors["role"] = refused
        return [], errors, typed
    message_ids, errors = queue.approve(session, current_user(), found, typed["username"], typed["role"], check,
                                          typed["approve_reason"], _link_for)
    return message_ids, errors, typed
