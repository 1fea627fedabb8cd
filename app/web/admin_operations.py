"""The operations of one episode for its administrator: a page per part (summary, tasks, timers,
messages, data, history), a page per repair, and an "Are you sure?" page before closing or deleting.

Every repair posts to one address with its reason; a refused repair shows its own page again with
what was typed and the problem next to the field it is about. Times are typed in UK time.
"""
from __future__ import annotations

import json
from datetime import datetime, time

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import audit, outbox, policy
from app.engine import repair
from app.engine.errors import EngineError
from app.models import AuditEvent, Episode, HumanTask, OutboxMessage
from app.uk_time import date_time, from_uk_time
from app.web import runtime
from app.web.access import current_user, deny, episode_or_404, roles
from app.web.admin import bp
from app.web.form_input import date_parts, parse_date, text

TABS = {"summary": "Summary", "tasks": "Tasks", "timers": "Timers", "messages": "Messages", "data": "Data",
        "history": "History"}
REPAIRS = ("retry", "reassign", "extend", "suspend", "resume", "hold", "lift_hold", "delete", "terminate")
# Repairs that end the episode: each on an "Are you sure?" page with warning text and a red button.
DESTRUCTIVE = ("terminate", "delete")
DONE = {"retry": "The failed step was run again.", "reassign": "The task was reassigned.",
        "extend": "The time limit was moved.", "suspend": "The episode is suspended: nothing moves until it is resumed.",
        "resume": "The episode is running again.", "hold": "The episode is under a legal hold.",
        "lift_hold": "The legal hold is lifted.", "delete": "The episode was deleted; a stub stays in the audit trail.",
        "terminate": "The episode was closed."}


def _episode_or_404(session, episode_id: int) -> Episode:
    return episode_or_404(session, episode_id, f"operations of episode {episode_id}")


def available_repairs(episode: Episode, ready_tasks: bool, waiting_timers: bool) -> list[str]:
    """The repairs that apply to the episode as it stands, in the order the summary offers them."""
    running = episode.status in ("open", "error", "suspended")
    offered = []
    if episode.step_failed:
        offered.append("retry")
    if running and ready_tasks:
        offered.append("reassign")
    if running and waiting_timers:
        offered.append("extend")
    if episode.status in ("open", "error"):
        offered.append("suspend")
    if episode.status == "suspended":
        offered.append("resume")
    if episode.status != "deleted":
        offered.append("lift_hold" if episode.legal_hold else "hold")
    if running:
        offered.append("terminate")
    if not episode.legal_hold and episode.status != "deleted":
        offered.append("delete")
    return offered


def _ready_tasks(session, episode: Episode) -> list[HumanTask]:
    return session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id, HumanTask.status == "ready")
                           .order_by(HumanTask.created_at, HumanTask.id)).all()


def _tab_context(session, episode: Episode, tab: str) -> dict:
    """What one part of the operations page shows; the workflow is loaded only by the parts that need it."""
    engine = runtime().engine
    if tab == "summary":
        timers = repair.waiting_timers(engine, episode)
        ready = _ready_tasks(session, episode)
        return {"positions": engine.positions(episode), "timers": timers, "ready": ready,
                "repairs": available_repairs(episode, bool(ready), bool(timers))}
    if tab == "tasks":
        return {"tasks": session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id)
                                         .order_by(HumanTask.created_at, HumanTask.id)).all()}
    if tab == "timers":
        return {"timers": repair.waiting_timers(engine, episode)}
    if tab == "messages":
        return {"messages": session.scalars(select(OutboxMessage).where(OutboxMessage.episode_id == episode.id)
                                            .order_by(OutboxMessage.id.desc()).limit(100)).all()}
    if tab == "data":
        return {"data": repair.task_data(engine, episode)}
    return {"trail": session.scalars(select(AuditEvent).where(AuditEvent.episode_id == episode.id)
                                     .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(100)).all()}


def _tab_page(episode_id: int, tab: str):
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        audit.record(session, "episode_operations_viewed", actor_id=current_user().id, episode_id=episode.id,
                     part=tab)
        return render_template(f"admin/episode_{tab}.html", episode=episode, child=episode.child, tab=tab,
                               tabs=TABS, **_tab_context(session, episode, tab))


@bp.get("/episodes/<int:episode_id>")
@roles("administrator")
def episode(episode_id: int):
    return _tab_page(episode_id, "summary")


@bp.get("/episodes/<int:episode_id>/<tab>")
@roles("administrator")
def episode_tab(episode_id: int, tab: str):
    if tab not in TABS or tab == "summary":
        abort(404)
    return _tab_page(episode_id, tab)


def _problem_field(action: str, message: str) -> str:
    """The field a refused repair's message is about, so the error sits next to it."""
    lowered = message.lower()
    if "reason" in lowered and "closure reason" not in lowered:
        return "reason"
    if action == "terminate":
        return "outcome"
    if action == "retry" and "json" in lowered:
        return "data"
    if action == "extend" and "timer" in lowered:
        return "extend-timer"
    if action == "extend" and ("date" in lowered or "time" in lowered):
        return "new-due-time" if "like 17:00" in message else "new-due"
    if action == "reassign":
        return "reassign-user" if "member" in lowered or "person" in lowered else "reassign-task"
    return "reason"


def _repair_page(episode_id: int, action: str, problem: str | None = None, typed=None, status: int = 200):
    engine = runtime().engine
    with runtime().db.session() as session:
        episode = _episode_or_404(session, episode_id)
        # The page shows the child's name and, for some repairs, task data and members: a view, audited.
        audit.record(session, "episode_operations_viewed", actor_id=current_user().id, episode_id=episode.id,
                     part=f"repair:{action}")
        context = {"episode": episode, "child": episode.child, "action": action, "typed": typed or {},
                   "errors": {_problem_field(action, problem): problem} if problem else {}}
        if action == "retry":
            context["data"] = [t for t in repair.task_data(engine, episode) if t["state"] == "failed"]
        elif action == "reassign":
            context["tasks"] = [(t.id, t.title) for t in _ready_tasks(session, episode)]
            context["members"] = [(m.id, m.full_name) for m in repair.member_choices(session, episode)]
        elif action == "extend":
            context["timers"] = [(t.task_id, f"{t.name} (now {date_time(t.due)})")
                                 for t in repair.waiting_timers(engine, episode)]
        elif action == "terminate":
            context["outcomes"] = list(repair.CLOSURE_OUTCOMES.items())
        page = render_template("admin/repair.html", error_title=bool(problem), destructive=action in DESTRUCTIVE,
                               **context)
    return page, status


@bp.get("/episodes/<int:episode_id>/repair/<action>")
@roles("administrator")
def repair_page(episode_id: int, action: str):
    if action not in REPAIRS:
        abort(404)
    return _repair_page(episode_id, action)


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


def new_due(form) -> tuple[datetime | None, str | None]:
    """The new time limit as typed: a date and a time of day in UK time (GMT or BST), as UTC."""
    day, problem = parse_date(date_parts(form, "new_due"), "the new date", required=True)
    if problem:
        return None, problem
    hour = text(form, "new_due_time", 5) or "17:00"
    try:
        at = time.fromisoformat(hour.zfill(5))
    except ValueError:
        return None, "Enter the time like 17:00"
    return from_uk_time(day, at), None


def _carry_out(action: str, form, episode_id: int, actor: int, reason: str) -> None:
    engine = runtime().engine
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
        due, problem = new_due(form)
        if problem:
            raise repair.RepairRefused(problem)
        repair.extend_deadline(engine, episode_id, form.get("timer", ""), due, actor, reason)
    elif action == "suspend":
        repair.suspend(engine, episode_id, actor, reason)
    elif action == "resume":
        repair.resume(engine, episode_id, actor, reason)
    elif action in ("hold", "lift_hold"):
        repair.set_legal_hold(engine, episode_id, action == "hold", actor, reason)
    elif action in DESTRUCTIVE and form.get("confirm") != "yes":
        # Only the "Are you sure?" page sends this: closing or deleting from anywhere else is refused.
        raise repair.RepairRefused("Confirm on the “Are you sure?” page that the episode is to be closed"
                                   if action == "terminate" else
                                   "Confirm on the “Are you sure?” page that the episode's content and the "
                                   "child's details are to be deleted for good")
    elif action == "delete":
        repair.delete_now(engine, episode_id, actor, reason)
    elif action == "terminate":
        repair.terminate(engine, episode_id, form.get("outcome", ""), actor, reason)


@bp.post("/episodes/<int:episode_id>/repair")
@roles("administrator")
def repair_episode(episode_id: int):
    form, actor = request.form, current_user().id
    action, reason = form.get("action", ""), text(form, "reason", 2000)
    with runtime().db.session() as session:
        _episode_or_404(session, episode_id)
    if action not in REPAIRS:
        abort(400)
    try:
        _carry_out(action, form, episode_id, actor, reason)
    except EngineError as refused:
        return _repair_page(episode_id, action, str(refused), form, 400)
    flash(DONE[action], "success")
    if action == "delete":
        return redirect(url_for("admin.dashboard"))
    return redirect(url_for("admin.episode", episode_id=episode_id))


def _message_or_404(session, message_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, message_id)
    if (row is None or row.episode_id is None
            or policy.visible_episode(session, current_user(), row.episode_id) is None):
        deny(session, f"message {message_id}")
    return row


def _message_page(message_id: int, problem: str | None = None, typed=None, status: int = 200):
    with runtime().db.session() as session:
        row = _message_or_404(session, message_id)
        audit.record(session, "episode_operations_viewed", actor_id=current_user().id, episode_id=row.episode_id,
                     part="message", message=row.id)
        page = render_template("admin/message.html", message=row, episode=session.get(Episode, row.episode_id), typed=typed or {},
                               errors={"reason": problem} if problem else {}, error_title=bool(problem))
    return page, status


@bp.route("/messages/<int:message_id>", methods=["GET", "POST"])
@roles("administrator")
def message(message_id: int):
    if request.method == "GET":
        return _message_page(message_id)
    action, reason = request.form.get("action", ""), text(request.form, "reason", 2000)
    with runtime().db.session() as session:
        episode_id = _message_or_404(session, message_id).episode_id
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
        return _message_page(message_id, problem, request.form, 400)
    if action == "retry":
        outbox.deliver_soon(runtime(), [message_id])
    flash("The message will be sent again." if action == "retry" else "The message was discarded.", "success")
    return redirect(url_for("admin.episode_tab", episode_id=episode_id, tab="messages"))
