"""The administrator's dashboard, episode lists, operations page, repairs and bulk actions."""
from __future__ import annotations

import json
from datetime import datetime, time

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import audit, outbox, policy
from app.audit_lists import episodes_shown
from app.clock import now
from app.engine import repair
from app.engine.errors import EngineError
from app.models import AuditEvent, Episode, HumanTask, OutboxMessage
from app.services import admin_episodes as lists
from app.services import bulk_repair
from app.web import runtime
from app.web.access import current_user, deny, episode_or_404, roles
from app.web.form_input import date_parts, parse_date, text

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_filter("capped")
def capped(count: int) -> str:
    """A dashboard count: exact up to the cap, then "10,000+"."""
    return f"{lists.COUNT_CAP:,}+" if count > lists.COUNT_CAP else f"{count:,}"
REPAIRS = ("retry", "reassign", "extend", "suspend", "resume", "hold", "lift_hold", "delete", "terminate")


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


def _episode_or_404(session, episode_id: int) -> Episode:
    return episode_or_404(session, episode_id, f"operations of episode {episode_id}")


def _operations_page(episode_id: int, problem: dict | None = None, typed: dict | None = None, status: int = 200):
    engine = runtime().engine
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        audit.record(session, "episode_operations_viewed", actor_id=current_user().id, episode_id=episode.id)
        tasks = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id)
                                .order_by(HumanTask.created_at, HumanTask.id)).all()
        messages = session.scalars(select(OutboxMessage).where(OutboxMessage.episode_id == episode.id)
                                   .order_by(OutboxMessage.id.desc()).limit(100)).all()
        trail = session.scalars(select(AuditEvent).where(AuditEvent.episode_id == episode.id)
                                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(100)).all()
        page = render_template(
            "admin/episode.html", episode=episode, child=episode.child, tasks=tasks, messages=messages,
            trail=trail, timers=repair.waiting_timers(engine, episode), data=repair.task_data(engine, episode),
            positions=engine.positions(episode), members=repair.member_choices(session, episode),
            outcomes=repair.CLOSURE_OUTCOMES, problem=problem or {}, typed=typed or {})
    return page, status


@bp.get("/episodes/<int:episode_id>")
@roles("administrator")
def episode(episode_id: int):
    return _operations_page(episode_id)


def _corrected_data(form) -> tuple[dict | None, str | None]:
    """Task data the administrator edited: each field holds a JSON value (text needs its quotes)."""
    corrected = {}
    for key, value in form.items():
        if not key.startswith("data."):
            continue
        name = key.removeprefix("data.")
        try:
            corrected[name] = json.loads(value)
        except ValueError:
            return None, f"The value of “{name}” is not valid JSON: put text in double quotes"
    return corrected, None


def _new_due(form) -> tuple[datetime | None, str | None]:
    day, problem = parse_date(date_parts(form, "new_due"), "the new date", required=True)
    if problem:
        return None, problem
    hour = text(form, "new_due_time", 5) or "17:00"
    try:
        at = time.fromisoformat(hour)
    except ValueError:
        return None, "Enter the time like 17:00"
    return datetime.combine(day, at, tzinfo=now().tzinfo), None


@bp.post("/episodes/<int:episode_id>/repair")
@roles("administrator")
def repair_episode(episode_id: int):
    form, engine, actor = request.form, runtime().engine, current_user().id
    action, reason = form.get("action", ""), text(form, "reason", 2000)
    with runtime().db.session() as session:
        _episode_or_404(session, episode_id)
    if action not in REPAIRS:
        return _operations_page(episode_id, {"form": "none", "message": "Choose a repair"}, form, 400)
    try:
        if action == "retry":
            data, problem = _corrected_data(form)
            if problem:
                raise repair.RepairRefused(problem)
            repair.retry(engine, episode_id, actor, reason, data or None)
        elif action == "reassign":
            task_id, user_id = form.get("task", ""), form.get("user", "")
            if not (task_id.isdigit() and user_id.isdigit()):
                raise repair.RepairRefused("Choose the task and the member to give it to")
            repair.reassign(engine, episode_id, int(task_id), int(user_id), actor, reason)
        elif action == "extend":
            due, problem = _new_due(form)
            if problem:
                raise repair.RepairRefused(problem)
            repair.extend_deadline(engine, episode_id, form.get("timer", ""), due, actor, reason)
        elif action == "suspend":
            repair.suspend(engine, episode_id, actor, reason)
        elif action == "resume":
            repair.resume(engine, episode_id, actor, reason)
        elif action in ("hold", "lift_hold"):
            repair.set_legal_hold(engine, episode_id, action == "hold", actor, reason)
        elif action == "delete":
            if form.get("confirm") != "yes":
                raise repair.RepairRefused("Confirm that the episode's content and the child's details are to be "
                                           "deleted for good")
            repair.delete_now(engine, episode_id, actor, reason)
        elif action == "terminate":
            repair.terminate(engine, episode_id, form.get("outcome", ""), actor, reason)
    except EngineError as refused:
        return _operations_page(episode_id, {"form": action, "message": str(refused)}, form, 400)
    flash(DONE[action], "success")
    if action == "delete":
        return redirect(url_for("admin.dashboard"))
    return redirect(url_for("admin.episode", episode_id=episode_id))


DONE = {"retry": "The failed step was run again.", "reassign": "The task was reassigned.",
        "extend": "The time limit was moved.", "suspend": "The episode is suspended: nothing moves until it is resumed.",
        "resume": "The episode is running again.", "hold": "The episode is under a legal hold.",
        "lift_hold": "The legal hold is lifted.", "delete": "The episode was deleted; a stub stays in the audit trail.",
        "terminate": "The episode was closed."}


@bp.post("/messages/<int:message_id>")
@roles("administrator")
def message(message_id: int):
    action, reason = request.form.get("action", ""), text(request.form, "reason", 2000)
    with runtime().db.session() as session:
        row = session.get(OutboxMessage, message_id)
        episode_id = row.episode_id if row else None
        if row is None or episode_id is None or policy.visible_episode(session, current_user(), episode_id) is None:
            deny(session, f"message {message_id}")
    problem = None
    if action not in ("retry", "discard"):
        problem = "Choose to send the message again or to discard it"
    elif not reason:
        problem = "Enter the reason: it is kept in the audit trail"
    if problem is None:
        with runtime().db.session() as session:
            row = session.get(OutboxMessage, message_id)
            try:
                (outbox.retry_message if action == "retry" else outbox.discard_message)(session, row)
            except ValueError as refused:
                session.rollback()
                problem = str(refused)
            else:
                audit.record(session, f"message_{action}", actor_id=current_user().id, episode_id=episode_id,
                             reason=reason, message_id=message_id, kind=row.kind)
    if problem:
        return _operations_page(episode_id, {"form": f"message-{message_id}", "message": problem}, request.form, 400)
    if action == "retry":
        outbox.deliver_soon(runtime(), [message_id])
    flash("The message will be sent again." if action == "retry" else "The message was discarded.", "success")
    return redirect(url_for("admin.episode", episode_id=episode_id))


@bp.route("/episodes/bulk", methods=["GET", "POST"])
@roles("administrator")
def bulk():
    """A bulk retry or reassign over a filtered list: a preview first, then one confirmed action."""
    form = request.form if request.method == "POST" else request.args
    filters = lists.read_filters(form)
    action = form.get("action", "retry")
    with runtime().db.session() as session:
        plan = bulk_repair.preview(session, current_user(), filters, action, form, stuck_after_days=_stuck_days())
        episodes_shown(session, current_user().id, "admin_bulk", [item.episode_id for item in plan.items],
                       bulk=action)
    if request.method == "POST" and form.get("confirm") == "yes" and not plan.problems:
        result = bulk_repair.carry_out(runtime(), plan, current_user().id, text(form, "reason", 2000))
        if result.problems:
            plan.problems = result.problems
        else:
            flash(f"{result.done} of {len(plan.items)} episodes were {'retried' if action == 'retry' else 'reassigned'}"
                  + (f"; {len(result.failed)} still need attention." if result.failed else "."), "success")
            return redirect(url_for("admin.episodes", **filters.as_args(page=1)))
    with runtime().db.session() as session:
        choices = lists.filter_choices(session, current_user())
    return render_template("admin/bulk.html", plan=plan, filters=filters, action=action, lists=lists.LISTS,
                           choices=choices, typed=form), 400 if plan.problems and request.method == "POST" else 200
