"""A sectioned user-task form (the assessment): its task list, one page per section, and Check your answers.

The task list is the task's own page (/tasks/<id>, see app/web/tasks.py). A section's "Save and
continue" checks that section against its part of the schema and keeps it in the task's draft;
"Save and come back later" keeps it unchecked. Submitting from Check your answers checks the whole
form against the whole schema and completes the task through the engine, as the single page does.
Who may open these pages is who may complete the task (task_forms.open_task), as for the single page.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app import audit, consent, policy
from app.engine.errors import EpisodeNotOpen, FormInvalid, NotPermitted, TaskAlreadyDone, TaskNotFound, TaskNotReady
from app.engine.runner import user_exists
from app.forms import sections as parts
from app.services import called_tasks, task_forms
from app.web import request_db, runtime, schema_form
from app.web.access import current_user, deny, signed_in

bp = Blueprint("assessment_sections", __name__)

is_sectioned = parts.is_sectioned


def _opened(session, task_id: int) -> task_forms.OpenTask:
    opened = task_forms.open_task(session, current_user(), task_id)
    if opened is None or not parts.is_sectioned(opened.schema, opened.ui):
        session.commit()  # keeps the refusal open_task audited
        abort(404)
    return opened


def _known(session, opened: task_forms.OpenTask) -> dict:
    return {**task_forms.prefill(session, opened.schema, opened.episode, current_user()),
            **called_tasks.prefill(session, opened.task)}


def _common(opened: task_forms.OpenTask) -> dict:
    return {"task": opened.task, "episode": opened.episode, "child": opened.episode.child}


# ---------------------------------------------------------------- the task list


def task_list(session, opened: task_forms.OpenTask):
    """The task's page when its form is sectioned: each section with its status."""
    draft = opened.task.draft
    rows = [(s, parts.status(draft, s.name)) for s in parts.sections(opened.schema, opened.ui)]
    audit.record(session, "task_opened", actor_id=current_user().id, episode_id=opened.episode.id,
                 task=opened.task.name)
    return render_template(
        "tasks/sections/task_list.html", **_common(opened), rows=rows, status_text=parts.STATUS_TEXT,
        done=sum(1 for _, state in rows if state == parts.COMPLETED), description=opened.schema.get("description"),
        panel=called_tasks.panel(session, opened.task), releasable=policy.may_release(current_user(), opened.task))


# ---------------------------------------------------------------- one section


def _returning() -> bool:
    return request.args.get("return") == "check"


def _render_section(session, opened, section: parts.Section, form: schema_form.Form, status: int = 200):
    recorded = _recorded(session, opened.episode, section.shows)
    form = parts.page_form(form, len(section.path))
    return render_template(
        "tasks/sections/section.html", **_common(opened), section=section, form=form, recorded=recorded,
        returning=_returning(), error_title=bool(form.error_list)), status


def _recorded(session, episode, shows: str | None) -> list[tuple[str, str]] | None:
    """What the system already holds that a section only shows: the consent recorded in its own step."""
    if shows != "consent":
        return None
    held = consent.current(session, episode)
    if held is None:
        return [("Consent", "No consent statement has been recorded for this CAF")]
    yes_no = {True: "Yes", False: "No"}
    lines = [("Decision", {"given": "Consent given", "refused": "Consent refused",
                           "withdrawn": "Consent withdrawn"}.get(episode.consent_state, "Not recorded")),
             ("Given or refused by", ", ".join(filter(None, (held.given_by_name, held.relationship_to_child)))),
             ("Agrees to the information being stored", yes_no[bool(held.to_storage)]),
             ("Agrees to the information being shared", yes_no[bool(held.to_sharing)])]
    never = list((held.excluded or {}).get("kinds") or []) + list((held.excluded or {}).get("names") or [])
    if never:
        lines.append(("Never to be shared with", ", ".join(str(n).replace("_", " ") for n in never)))
    if held.given_on:
        lines.append(("Date given", f"{held.given_on.day} {held.given_on:%B %Y}"))
    return [(key, value) for key, value in lines if value]


def _section_or_404(opened, name: str) -> parts.Section:
    section = parts.find(opened.schema, opened.ui, name)
    if section is None:
        abort(404)
    return section


@bp.get("/tasks/<int:task_id>/sections/<name>")
@signed_in
def section(task_id: int, name: str):
    with request_db.transaction() as session:
        opened = _opened(session, task_id)
        section = _section_or_404(opened, name)
        known = _known(session, opened)
        draft = opened.task.draft
        if parts.has_saved(draft, name):
            data, raw = parts.saved_answers(draft, name)
            data = schema_form.carry_read_only(section.schema, section.ui, known, data)
        else:
            filled = parts.at(known, section.path)
            data, raw = (parts.shaped(section.path, filled) if filled is not None else {}), None
        audit.record(session, "task_opened", actor_id=current_user().id, episode_id=opened.episode.id,
                     task=opened.task.name, section=name)
        return _render_section(session, opened, section, schema_form.build_form(section.schema, section.ui, data,
                                                                                  None, raw))


@bp.post("/tasks/<int:task_id>/sections/<name>")
@signed_in
def save_section(task_id: int, name: str):
    posted, action = request.form, request.form.get("action", "continue")
    with request_db.transaction() as session:
        opened = _opened(session, task_id)
        section = _section_or_404(opened, name)
        schema, ui = section.schema, section.ui
        if schema_form.is_row_action(action):
            try:
                data, raw, focus = schema_form.apply_row_action(schema, ui, posted, action)
            except ValueError:
                abort(400)
            return _render_section(session, opened, section,
                                   schema_form.build_form(schema, ui, data, None, raw, focus=focus))
        if action not in ("continue", "later"):
            abort(400)
        data, raw, problems = schema_form.parse_form(schema, ui, posted)
        data = schema_form.carry_read_only(schema, ui, _known(session, opened), data)
        if schema_form.unexpected_names(schema, ui, posted):
            problem = {"field": "", "message": "This page was sent with fields it does not have, so nothing was "
                                               "saved. Check your answers and send it again."}
            return _render_section(session, opened, section,
                                   schema_form.build_form(schema, ui, data, [problem], raw), 400)
        if action == "continue":
            errors = task_forms.all_problems(schema, data, problems, lambda email: user_exists(session, email))
            if errors:
                return _render_section(session, opened, section,
                                       schema_form.build_form(schema, ui, data, errors, raw), 400)
        state = parts.COMPLETED if action == "continue" else parts.IN_PROGRESS
        unchecked = problems if action == "later" else None
        episode_id, title = opened.episode.id, section.title
    try:
        # Merged into the draft as it stands when saved: another tab's section saved meanwhile stays.
        task_forms.save_draft(runtime().engine, current_user(), episode_id, task_id,
                              lambda current: parts.with_section(current, name, data, raw, state, unchecked))
    except NotPermitted:
        with request_db.transaction() as session:
            deny(session, f"task {task_id}")
    except (TaskAlreadyDone, TaskNotReady, TaskNotFound, EpisodeNotOpen) as exc:
        flash(f"Your answers were not saved: {exc}.", "important")
        return redirect(url_for("episodes.show", episode_id=episode_id))
    if action == "later":
        flash(f"Your answers to “{title}” have been saved. You can come back to them at any time.", "success")
        return redirect(url_for("tasks.form", task_id=task_id))
    if _returning():
        return redirect(url_for("assessment_sections.check", task_id=task_id))
    # Back to the task list, as the GOV.UK pattern does: the status shows what is done and what is not.
    return redirect(url_for("tasks.form", task_id=task_id))


# ---------------------------------------------------------------- Check your answers, then submit


def _answers(session, opened) -> dict:
    """The whole form as it stands: each section as saved, or as eCAF fills it in when it never was."""
    known, draft = _known(session, opened), opened.task.draft
    data = parts.with_known(parts.whole_data(draft), draft, known, parts.sections(opened.schema, opened.ui))
    return schema_form.carry_read_only(opened.schema, opened.ui, known, data)


def _render_check(session, opened, errors: list[dict] | None = None, status: int = 200):
    draft = opened.task.draft
    data = _answers(session, opened)
    cards = []
    for s in parts.sections(opened.schema, opened.ui):
        answers = parts.at(data, s.path)
        rows = schema_form.summary(s.schema, s.ui, parts.shaped(s.path, answers) if answers is not None else {})
        for _ in s.path:  # down to the section's own answers
            rows = rows[0].children if rows and rows[0].children is not None else []
        cards.append((s, rows, parts.status(draft, s.name)))
    error_list = [{"text": _message(opened, e), "href": _error_href(opened, e)} for e in errors or []]
    return render_template("tasks/sections/check.html", **_common(opened), cards=cards, error_list=error_list,
                           status_text=parts.STATUS_TEXT, error_title=bool(error_list)), status


def _section_of(opened, error: dict) -> parts.Section | None:
    field = str(error.get("field") or "")
    holding = [s for s in parts.sections(opened.schema, opened.ui)
               if field == s.name or field.startswith(s.name + ".")]
    return max(holding, key=lambda s: len(s.path), default=None)


def _message(opened, error: dict) -> str:
    """The field's own GOV.UK message, as its section's page would word it."""
    section = _section_of(opened, error)
    if section is None:
        return str(error.get("message") or "")
    form = schema_form.build_form(section.schema, section.ui, {}, [error])
    placed = [f.error for f in form.walk() if f.error]
    text = placed[0] if placed else str(error.get("message") or "")
    return f"{section.title}: {text}"


def _error_href(opened, error: dict) -> str:
    section = _section_of(opened, error)
    if section is None:
        return "#check-answers"
    form = schema_form.build_form(section.schema, section.ui, {}, [error])
    target = next((f for f in form.walk() if f.error), None)
    page = url_for("assessment_sections.section", task_id=opened.task.id, name=section.name, **{"return": "check"})
    return page + ("#" + target.focus_id if target is not None else "")


@bp.get("/tasks/<int:task_id>/check")
@signed_in
def check(task_id: int):
    with request_db.transaction() as session:
        opened = _opened(session, task_id)
        audit.record(session, "task_opened", actor_id=current_user().id, episode_id=opened.episode.id,
                     task=opened.task.name, section="check")
        return _render_check(session, opened)


@bp.post("/tasks/<int:task_id>/check")
@signed_in
def submit(task_id: int):
    engine = runtime().engine
    with request_db.transaction() as session:
        opened = _opened(session, task_id)
        draft = opened.task.draft
        data = _answers(session, opened)
        errors = task_forms.submission_problems(session, opened, data, parts.saved_problems(draft))
        if errors:
            return _render_check(session, opened, errors, 400)
        episode_id, title = opened.episode.id, opened.task.title
        concern = bool(data.get("child_protection_concern"))
        phone = opened.episode.authority.safeguarding_phone if opened.episode.authority else None
    try:
        result = task_forms.complete(engine, current_user(), episode_id, task_id, data)
    except NotPermitted:
        with request_db.transaction() as session:
            deny(session, f"task {task_id}")
    except FormInvalid as exc:
        with request_db.transaction() as session:
            return _render_check(session, _opened(session, task_id), exc.errors, 400)
    except (TaskAlreadyDone, TaskNotReady, TaskNotFound, EpisodeNotOpen) as exc:
        flash(f"Your answers were not saved: {exc}.", "important")
        return redirect(url_for("episodes.show", episode_id=episode_id))
    from app.web.tasks import after_completion  # tasks routes here: imported when used, not at load

    return after_completion(result, title, concern, phone, episode_id)
