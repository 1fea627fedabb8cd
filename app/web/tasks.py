"""The task list (home page), claiming and releasing role tasks, and completing a task's form."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import audit, policy
from app.audit_lists import episodes_shown
from app.engine.errors import EpisodeNotOpen, FormInvalid, NotPermitted, TaskAlreadyDone, TaskNotFound, TaskNotReady
from app.forms import sections as parts
from app.models import HumanTask
from app.services import called_tasks, service_requests, task_forms
from app.services.task_list import FILTERS, group_by_family, open_alerts, ready_tasks
from app.web import assessment_sections, draft_saved, request_db, runtime, schema_form
from app.web.attachments import request_evidence
from app.web.access import current_user, deny, signed_in
from app.web.layout import support_contacts

bp = Blueprint("tasks", __name__)



@bp.get("/")
@signed_in
def home():
    filters = {f for f in request.args.getlist("show") if f in FILTERS}
    by_family = request.args.get("group") == "family"
    with request_db.transaction() as session:
        rows = ready_tasks(session, current_user(), filters, by_family=by_family)
        episodes_shown(session, current_user().id, "task_list", [row.episode_id for row in rows])
        alerts = open_alerts(session, current_user())
        team_waiting = (sum(row.waiting for row in service_requests.inbox(session, current_user()))
                        if policy.has_team_inbox(current_user()) else None)
    return render_template("tasks/home.html", rows=rows, filters=filters, alerts=alerts, errors={}, typed={},
                           team_waiting=team_waiting, groups=group_by_family(rows) if by_family else None)


@bp.post("/tasks/<int:task_id>/claim")
@signed_in
def claim(task_id: int):
    with request_db.transaction() as session:
        task = task_forms.claim(session, current_user(), task_id)
        if task is None:
            deny(session, f"claim task {task_id}")
        title = task.title
    flash(f"You have claimed “{title}”.", "success")
    return redirect(url_for("tasks.form", task_id=task_id))


@bp.post("/tasks/<int:task_id>/release")
@signed_in
def release(task_id: int):
    with request_db.transaction() as session:
        task = task_forms.release(session, current_user(), task_id)
        if task is None:
            deny(session, f"release task {task_id}")
        title = task.title
    flash(f"You have released “{title}” for someone else with your role to claim.", "success")
    return redirect(url_for("tasks.home"))


def _render(session, opened: task_forms.OpenTask, form: schema_form.Form, status: int = 200, **extra):
    """The task's form page; `extra` goes to the template (a file refused while attaching evidence)."""
    episode = opened.episode
    panel = called_tasks.panel(session, opened.task)
    if panel is not None and panel.contribution is not None and opened.task.name == "review_contribution":
        schema, ui = called_tasks.form_for(session, episode, _writing_task(session, panel.contribution.id), {}, None)
        panel.summary = schema_form.summary(schema, ui, panel.contribution.content or {})
    return render_template(
        "tasks/form.html", task=opened.task, episode=episode, child=episode.child, form=form, panel=panel,
        releasable=policy.may_release(current_user(), opened.task),
        asks_about_protection=form.field("child_protection_concern") is not None,
        draft_saved=draft_saved.saved_on(opened.task.draft), has_draft=bool(opened.task.draft),
        evidence=request_evidence(session, opened.task) if panel is not None else None,
        error_title=bool(form.error_list) or bool(extra.get("attach_error")), **extra), status


def _writing_task(session, contribution_id: int) -> HumanTask:
    return session.scalar(select(HumanTask).where(HumanTask.contribution_id == contribution_id,
                                                  HumanTask.name == "write_contribution").limit(1))


@bp.get("/tasks/<int:task_id>")
@signed_in
def form(task_id: int):
    with request_db.transaction() as session:
        opened = task_forms.open_task(session, current_user(), task_id)
        if opened is None:
            session.commit()
            abort(404)
        if assessment_sections.is_sectioned(opened.schema, opened.ui):
            return assessment_sections.task_list(session, opened)  # long forms: a page per section
        draft = opened.task.draft or {}
        known = {**task_forms.prefill(session, opened.schema, opened.episode, current_user()),
                 **called_tasks.prefill(session, opened.task)}
        data = schema_form.carry_read_only(opened.schema, opened.ui, known, dict(draft["data"])) \
            if "data" in draft else known
        built = schema_form.build_form(opened.schema, opened.ui, data, None, draft.get("raw"))
        audit.record(session, "task_opened", actor_id=current_user().id, episode_id=opened.episode.id,
                     task=opened.task.name)
        return _render(session, opened, built)


@bp.post("/tasks/<int:task_id>")
@signed_in
def submit(task_id: int):
    posted = request.form
    action = posted.get("action", "submit")
    engine = runtime().engine
    with request_db.transaction() as session:
        opened = task_forms.open_task(session, current_user(), task_id)
        if opened is None:
            session.commit()
            abort(404)
        schema, ui = opened.schema, opened.ui
        if schema_form.is_row_action(action):
            try:
                data, raw, focus = schema_form.apply_row_action(schema, ui, posted, action)
            except ValueError:
                abort(400)
            return _render(session, opened, schema_form.build_form(schema, ui, data, None, raw, focus=focus))
        data, raw, problems = schema_form.parse_form(schema, ui, posted)
        known = task_forms.prefill(session, schema, opened.episode, current_user())
        data = schema_form.carry_read_only(schema, ui, known, data)
        if schema_form.unexpected_names(schema, ui, posted):
            problem = {"field": "", "message": "This form was sent with fields it does not have, so nothing was "
                                               "saved. Check your answers and send it again."}
            return _render(session, opened, schema_form.build_form(schema, ui, data, [problem], raw), 400)
        episode_id, title = opened.episode.id, opened.task.title
        concern = bool(data.get("child_protection_concern"))
        phone = opened.episode.authority.safeguarding_phone if opened.episode.authority else None
        if action == "save":
            pass  # saved below, by a step of its own once this read transaction has ended
        elif action != "submit":
            abort(400)
        else:
            errors = task_forms.submission_problems(session, opened, data, problems)
            if errors:
                return _render(session, opened, schema_form.build_form(schema, ui, data, errors, raw), 400)
        draft = _draft_to_save(schema, ui, posted, data, raw, problems)
    try:
        if action == "save":
            task_forms.save_draft(engine, current_user(), episode_id, task_id, draft)
        else:
            result = task_forms.complete(engine, current_user(), episode_id, task_id, data)
    except NotPermitted:
        with request_db.transaction() as session:
            deny(session, f"task {task_id}")
    except FormInvalid as exc:
        with request_db.transaction() as session:
            opened = task_forms.open_task(session, current_user(), task_id)
            built = schema_form.build_form(opened.schema, opened.ui, data, exc.errors, raw)
            return _render(session, opened, built, 400)
    except (TaskAlreadyDone, TaskNotReady, TaskNotFound, EpisodeNotOpen) as exc:
        flash(f"Your answers were not saved: {exc}.", "important")
        return redirect(url_for("episodes.show", episode_id=episode_id))
    if action == "save":
        flash(f"Your draft of “{title}” has been saved. You can come back to it from your task list.", "success")
        return redirect(url_for("tasks.form", task_id=task_id))
    return after_completion(result, title, concern, phone, episode_id)


def _draft_to_save(schema: dict, ui: dict | None, posted, data: dict, raw: dict, problems: list[dict]):
    """The whole draft; or, when the form is sectioned (a tab opened before it was, or a forged post),
    each section posted merged into the draft as it stands under the step's lock, the others kept."""
    if not parts.is_sectioned(schema, ui):
        return draft_saved.stamped({"data": data, "raw": raw})
    each = parts.sections(schema, ui)
    return lambda current: draft_saved.stamped(parts.with_posted(current, each, set(posted), data, raw, problems))


def after_completion(result, title: str, concern: bool, phone: str | None, episode_id: int):
    """What a completed task says, and where it leads (the single page and a sectioned form's Submit)."""
    if concern:
        support = phone or support_contacts()["safeguarding_phone"]
        flash(f"You recorded a child-protection concern. Follow your safeguarding procedures now: call the "
              f"safeguarding team on {support}. The assessment is now due within 48 hours.", "important")
    if result.status == "closed":
        # The step ended the CAF (consent refused, no CAF needed): say how it ended, not that a form is complete.
        return redirect(url_for("episodes.outcome", episode_id=episode_id))
    flash(f"“{title}” is complete.", "success")
    # Straight on to the user's next task in this episode, if the step gave them one.
    following = result.next_task_for(current_user().id)
    return redirect(url_for("tasks.form", task_id=following) if following is not None
                    else url_for("episodes.show", episode_id=episode_id))
