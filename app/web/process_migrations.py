"""Comparing process versions and moving open episodes to a newer one.

Process owners run migrations; administrators may read the comparison, the dry-run report and
the results, but not migrate. The report names episodes by reference only: no child's details.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import audit
from app.models import ProcessVersion
from app.services import process_migrations as migrations
from app.web import runtime
from app.policy import process_library as library_policy
from app.web.access import current_user, roles

bp = Blueprint("process_migrations", __name__)
READERS = library_policy.LIBRARY_READERS
SHOWN_EPISODES = 500  # rows on the page; "all that can migrate" still covers every episode


def _number(values, name: str) -> int | None:
    value = (values.get(name) or "").strip().lower().removeprefix("v")
    return int(value) if value.isdigit() and len(value) < 9 else None


def _versions_or_404(session, process_id: str) -> list[ProcessVersion]:
    found = session.scalars(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
                            .order_by(ProcessVersion.version.desc())).all()
    if not found:
        abort(404)
    return found


def _stage(values) -> str | None:
    stage = values.get("stage") or None
    return stage if stage in migrations.STAGES else None


@bp.get("/processes/<process_id>/diff")
@roles(*READERS)
def diff(process_id: str):
    source, target = _number(request.args, "from"), _number(request.args, "to")
    errors, found = {}, None
    with runtime().db.session() as session:
        versions = _versions_or_404(session, process_id)
        if source is None or target is None:
            errors["from"] = "Choose the two versions to compare"
        else:
            try:
                found = migrations.diff_between(session, process_id, source, target)
            except migrations.MigrationRefused as refused:
                errors["from"] = "; ".join(refused.problems)
    page = render_template("process_migrations/diff.html", process_id=process_id, versions=versions, diff=found,
                           typed={"from": request.args.get("from", ""), "to": request.args.get("to", "")},
                           errors=errors, error_title=bool(errors))
    return page, 400 if errors else 200


@bp.get("/processes/<process_id>/diff/v<int:version>.bpmn")
@roles(*READERS)
def diagram(process_id: str, version: int):
    """The BPMN of one version, for the diagram that marks what changed."""
    with runtime().db.session() as session:
        found = session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                            ProcessVersion.version == version))
        if found is None:
            abort(404)
        files = found.bpmn_files
        main = next((xml for xml in files.values() if f'id="{process_id}"' in xml), next(iter(files.values())))
    return Response(main, mimetype="application/xml", headers={"X-Content-Type-Options": "nosniff"})


def _plan_page(process_id: str, values, errors: dict | None = None, typed: dict | None = None, status: int = 200):
    source, target, stage = _number(values, "from"), _number(values, "to"), _stage(values)
    errors = dict(errors or {})
    plan = None
    with runtime().db.session() as session:
        versions = _versions_or_404(session, process_id)
    if source is None or target is None:
        errors.setdefault("from", "Choose the version to move episodes from and the version to move them to")
    else:
        try:
            plan = migrations.dry_run(runtime(), process_id, source, target, stage=stage)
        except migrations.MigrationRefused as refused:
            errors.setdefault("from", "; ".join(refused.problems))
    if plan is not None:
        with runtime().db.session() as session:
            audit.record(session, "process_migration_dry_run", actor_id=current_user().id, process=process_id,
                         source=plan.source.label, target=plan.target.label, stage=stage,
                         episodes=len(plan.episodes), migratable=len(plan.migratable))
    typed = typed if typed is not None else _typed(values)
    page = render_template(
        "process_migrations/plan.html", process_id=process_id, versions=versions, plan=plan, stage=stage,
        stages=migrations.STAGES, shown=SHOWN_EPISODES, errors=errors, error_title=bool(errors),
        typed={"from": values.get("from", ""), "to": values.get("to", ""), "note": typed.get("note", ""),
               "scope": typed.get("scope", ""), "episodes": set(typed.get("episodes", []))},
        may_migrate=library_policy.may_change_library(current_user()))
    return page, 400 if errors else status


def _typed(values) -> dict:
    """The owner's answers as sent (a form, or a change link back from checking them): nothing is
    chosen for them."""
    chosen = [int(v) for v in values.getlist("episode") if v.isdigit() and len(v) < 12]
    return {"note": (values.get("note") or "")[:migrations.MAX_NOTE + 100], "scope": values.get("scope", ""),
            "episodes": [str(v) for v in chosen]}


@bp.get("/processes/<process_id>/migrate")
@roles(*READERS)
def plan(process_id: str):
    return _plan_page(process_id, request.args)


def _answer_problems(typed: dict) -> dict:
    errors = {}
    if typed["scope"] not in ("all", "chosen"):
        errors["scope"] = "Choose which episodes to move"
    elif typed["scope"] == "chosen" and not typed["episodes"]:
        errors["episodes"] = "Tick the episodes to move, or choose all that can move"
    note = typed["note"].strip()
    if not note:
        errors["note"] = "Enter a change note: it is kept with each episode's result and in the audit trail"
    elif len(note) > migrations.MAX_NOTE:
        errors["note"] = f"The change note must be {migrations.MAX_NOTE} characters or fewer"
    return errors


@bp.post("/processes/<process_id>/migrate/check")
@roles(*library_policy.LIBRARY_OWNERS)
def check(process_id: str):
    """Check your answers: the versions, the note and every episode that will move, before the Move button."""
    form = request.form
    typed = _typed(form)
    errors = _answer_problems(typed)
    source, target, stage = _number(form, "from"), _number(form, "to"), _stage(form)
    if errors or source is None or target is None:
        return _plan_page(process_id, form, errors, typed)
    try:
        found = migrations.dry_run(runtime(), process_id, source, target, stage=stage)
    except migrations.MigrationRefused as refused:
        return _plan_page(process_id, form, {"from": "; ".join(refused.problems)}, typed)
    chosen = {int(v) for v in typed["episodes"]}
    moving = [e for e in found.migratable if typed["scope"] == "all" or e.episode_id in chosen]
    if not moving:
        return _plan_page(process_id, form, {"episodes": "None of the episodes chosen can move"}, typed)
    change = {"from": source, "to": target, "stage": stage or "", "scope": typed["scope"], "note": typed["note"],
              "episode": typed["episodes"] if typed["scope"] == "chosen" else []}
    return render_template("process_migrations/check.html", process_id=process_id, plan=found, moving=moving,
                           stage=stage, typed=typed, shown=SHOWN_EPISODES,
                           change_args={k: v for k, v in change.items() if v not in ("", [])})


@bp.post("/processes/<process_id>/migrate")
@roles(*library_policy.LIBRARY_OWNERS)
def run(process_id: str):
    form = request.form
    typed = _typed(form)
    scope = typed["scope"]
    if scope not in ("all", "chosen"):
        return _plan_page(process_id, form, {"scope": "Choose which episodes to move"}, typed)
    try:
        result = migrations.run(runtime(), process_id, _number(form, "from"), _number(form, "to"),
                                episode_ids=None if scope == "all" else [int(v) for v in typed["episodes"]],
                                stage=_stage(form), note=form.get("note"), by_user_id=current_user().id)
    except migrations.MigrationRefused as refused:
        errors = {}
        for problem in refused.problems:
            field = "note" if "note" in problem else "episodes" if "episode" in problem else "from"
            errors.setdefault(field, problem)
        return _plan_page(process_id, form, errors, typed)
    moved = f"{len(result.migrated)} episode{'' if len(result.migrated) == 1 else 's'} migrated"
    flash(f"{moved}, {len(result.refused)} refused"
          + (f", {len(result.failed)} failed and left as they were" if result.failed else "") + ".", "success")
    return redirect(url_for("process_migrations.batch", batch=result.batch))


@bp.get("/processes/migrations/<batch>")
@roles(*READERS)
def batch(batch: str):
    if len(batch) > 36:
        abort(404)
    with runtime().db.session() as session:
        found = migrations.batch_results(session, batch)
        if found is None:
            abort(404)
        return render_template("process_migrations/batch.html", batch=found)
