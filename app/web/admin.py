"""The administrator's dashboard, episode lists and bulk actions (an episode's operations and repairs:
admin_operations.py)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.audit_lists import episodes_shown
from app.services import admin_episodes as lists
from app.services import bulk_repair
from app.web import runtime
from app.web.access import current_user, roles
from app.web.form_input import text

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_filter("capped")
def capped(count: int) -> str:
    """A dashboard count: exact up to the cap, then "10,000+"."""
    return f"{lists.COUNT_CAP:,}+" if count > lists.COUNT_CAP else f"{count:,}"


def _stuck_days() -> int:
    return runtime().config.stuck_after_days


@bp.get("/")
@roles("administrator")
def dashboard():
    with runtime().db.session() as session:
        board = lists.dashboard(session, current_user(), stuck_after_days=_stuck_days())
    return render_template("admin/dashboard.html", board=board, lists=lists.LISTS,
                           stuck_days=_stuck_days(), at_risk_days=lists.AT_RISK_DAYS,
                           at_risk_hours=lists.AT_RISK_PROTECTION_HOURS)


@bp.get("/episodes")
@roles("administrator")
def episodes():
    filters = lists.read_filters(request.args)
    with runtime().db.session() as session:
        rows, more = ([], False) if filters.errors else lists.episode_list(
            session, current_user(), filters, stuck_after_days=_stuck_days())
        episodes_shown(session, current_user().id, "admin_episodes", [r.episode.id for r in rows],
                       show=filters.show)
        page = render_template("admin/episodes.html", rows=rows, more=more, filters=filters, lists=lists.LISTS,
                               stages=lists.STAGES, sorts=lists.SORTS,
                               choices=lists.filter_choices(session, current_user()), typed=request.args)
    return page, 400 if filters.errors else 200


def _bulk_plan(form):
    filters = lists.read_filters(form)
    action = form.get("action", "retry")
    with runtime().db.session() as session:
        plan = bulk_repair.preview(session, current_user(), filters, action, form, stuck_after_days=_stuck_days())
        episodes_shown(session, current_user().id, "admin_bulk", [item.episode_id for item in plan.items],
                       bulk=action)
        choices = lists.filter_choices(session, current_user())
    return filters, action, plan, choices


@bp.route("/episodes/bulk", methods=["GET", "POST"])
@roles("administrator")
def bulk():
    """A bulk retry or reassign over a filtered list: a preview first, then an "Are you sure?" page
    (bulk_confirm) whose red button posts here with the reason."""
    form = request.form if request.method == "POST" else request.args
    filters, action, plan, choices = _bulk_plan(form)
    if request.method == "POST" and form.get("confirm") == "yes" and not plan.problems:
        if not bulk_repair.hold_to_listed(plan, set(form.getlist("listed"))):
            return render_template("admin/bulk_confirm.html", plan=plan, filters=filters, action=action,
                                   lists=lists.LISTS, choices=choices, typed=form, error_title=True), 409
        result = bulk_repair.carry_out(runtime(), plan, current_user().id, text(form, "reason", 2000))
        if not result.problems:
            flash(f"{result.done} of {len(plan.items)} episodes were {'retried' if action == 'retry' else 'reassigned'}"
                  + (f"; {len(result.failed)} still need attention." if result.failed else "."), "success")
            return redirect(url_for("admin.episodes", **filters.as_args(page=1)))
        # Refused (no reason): the same "Are you sure?" page, with what was typed and the problem.
        plan.problems = result.problems
        return render_template("admin/bulk_confirm.html", plan=plan, filters=filters, action=action, lists=lists.LISTS,
                               choices=choices, typed=form, error_title=True), 400
    return render_template("admin/bulk.html", plan=plan, filters=filters, action=action, lists=lists.LISTS,
                           choices=choices, typed=form), 400 if plan.problems and request.method == "POST" else 200


@bp.get("/episodes/bulk/confirm")
@roles("administrator")
def bulk_confirm():
    """Are you sure? What will change, a required reason, a red button and a way back."""
    filters, action, plan, choices = _bulk_plan(request.args)
    if plan.problems or not plan.possible:
        return redirect(url_for("admin.bulk", **bulk_args(filters, action, request.args)))
    return render_template("admin/bulk_confirm.html", plan=plan, filters=filters, action=action, lists=lists.LISTS,
                           choices=choices, typed={})


@bp.app_template_global("bulk_args")
def bulk_args(filters, action: str, typed) -> dict:
    """The filter, the action and who from and to: what the preview and its confirmation share."""
    args = {key: value for key, value in filters.as_args(page=None).items() if value not in (None, "")}
    args["action"] = action
    for name in ("from_user", "to_user"):
        if typed.get(name):
            args[name] = typed.get(name)
    return args


# The operations of one episode are routes of this blueprint too, kept in their own module.
from app.web import admin_operations  # noqa: E402

__all__ = ["admin_operations", "bp"]
