"""Asking a service for help from an episode, and the service team's inbox and decisions."""
from __future__ import annotations

import copy

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import attachments, audit, policy
from app.clock import now
from app.engine.forms import load_form
from app.engine.library import forms_of
from app.models import Attachment, Episode, HumanTask, ServiceRequest
from app.service_requests import STATUS_LABELS
from app.services import service_requests as requests_service
from app.web import runtime, schema_form
from app.web.access import current_user, deny, episode_or_404, roles, signed_in
from app.web.attachments import download_response

bp = Blueprint("service_requests", __name__)
DECISION_FORM = ("service_decision.schema.json", "service_decision.uischema.json")
REQUEST_FORM = ("service_request.schema.json", "service_request.uischema.json")


# ------------------------------------------------------------------ the episode's side


@bp.get("/episodes/<int:episode_id>/service-requests")
@signed_in
def episode_requests(episode_id: int):
    with runtime().db.session() as session:
        episode = episode_or_404(session, episode_id, f"service requests of episode {episode_id}")
        return _episode_page(session, episode)


def _episode_page(session, episode: Episode, error: str | None = None, chosen: str = "", status: int = 200):
    user = current_user()
    may_request = policy.may_request(session, user, episode)
    offered, excluded = policy.offered_services(session, episode) if may_request else ([], {})
    requests = requests_service.for_episode(session, episode)
    # The page names the child: one audit row per view, with the requests listed.
    audit.record(session, "service_requests_viewed", actor_id=user.id, episode_id=episode.id,
                 episodes=[episode.id], requests=[r.id for r in requests])
    return render_template(
        "service_requests/episode.html", episode=episode, child=episode.child, requests=requests,
        labels=STATUS_LABELS, services=offered, excluded=excluded, may_request=may_request,
        refused=policy.why_not_requestable(episode), error=error, chosen=chosen, error_title=bool(error)), status


@bp.post("/episodes/<int:episode_id>/service-requests")
@signed_in
def start(episode_id: int):
    chosen = (request.form.get("service") or "").strip()
    with runtime().db.session() as session:
        episode = episode_or_404(session, episode_id, f"ask a service for help in episode {episode_id}",
                                 lambda e: policy.may_request(session, current_user(), e))
    try:
        requests_service.start_request(runtime(), episode_id, current_user(),
                                       int(chosen) if chosen.isdigit() and len(chosen) < 12 else None)
    except LookupError:
        abort(404)
    except requests_service.RequestRefused as refused:
        with runtime().db.session() as session:
            episode = session.get(Episode, episode_id)
            return _episode_page(session, episode, str(refused), chosen, 400)
    with runtime().db.session() as session:
        task = session.scalar(select(HumanTask).where(
            HumanTask.episode_id == episode_id, HumanTask.name == "request_form", HumanTask.status == "ready",
            HumanTask.assigned_user_id == current_user().id).order_by(HumanTask.id.desc()).limit(1))
    flash("Write the request: say what the child needs and give the evidence the service asks for.", "success")
    return redirect(url_for("tasks.form", task_id=task.id) if task else
                    url_for("service_requests.episode_requests", episode_id=episode_id))


# ------------------------------------------------------------------ the team's side


@bp.get("/team/requests")
@roles("service_team")
def inbox():
    show_all = request.args.get("show") == "all"
    with runtime().db.session() as session:
        rows = requests_service.inbox(session, current_user(), show_all=show_all)
        # The inbox names children: one audit row per view, with the episodes and requests listed.
        shown = sorted({row.episode.id for row in rows})
        audit.record(session, "request_list_viewed", actor_id=current_user().id,
                     episode_id=shown[0] if len(shown) == 1 else None, episodes=shown,
                     requests=[row.request.id for row in rows], show="all" if show_all else "waiting")
        return render_template("service_requests/inbox.html", rows=rows, labels=STATUS_LABELS, show_all=show_all,
                               now=now())


def _team_request_or_404(session, request_id: int) -> ServiceRequest:
    found = policy.visible_to_team(session, current_user(), request_id)
    if found is None:
        deny(session, f"service request {request_id}")
    return found


def _decision_form(session, found: ServiceRequest) -> tuple[dict, dict]:
    """The decision form, with the authority's other services to redirect to."""
    forms = forms_of(session.get(Episode, found.episode_id).process_version)
    # A copy: the parsed forms are cached and shared.
    schema, ui = copy.deepcopy(load_form(forms, DECISION_FORM[0])), load_form(forms, DECISION_FORM[1])
    offered, _excluded = policy.offered_services(session, session.get(Episode, found.episode_id))
    others = [s for s in offered if s.id != found.service_id]
    if "redirect_to" in schema.get("properties", {}) and others:
        schema["properties"]["redirect_to"]["oneOf"] = [{"const": str(s.id), "title": s.name} for s in others]
    return schema, ui


def _team_page(session, found: ServiceRequest, form=None, status: int = 200):
    episode = session.get(Episode, found.episode_id)
    task = policy.team_task(session, found)
    may_decide = task is not None and policy.may_decide(session, current_user(), found)
    if may_decide and form is None:
        schema, ui = _decision_form(session, found)
        form = schema_form.build_form(schema, ui, {}, None)
    forms = forms_of(episode.process_version)
    request_schema, request_ui = load_form(forms, REQUEST_FORM[0]), load_form(forms, REQUEST_FORM[1])
    return render_template(
        "service_requests/team_request.html", found=found, episode=episode, child=episode.child, task=task,
        may_decide=may_decide, form=form, labels=STATUS_LABELS,
        content=schema_form.summary(request_schema, request_ui, found.content or {}),
        files=requests_service.attachments_of(session, found), size_label=attachments.size_label,
        error_title=bool(form and form.error_list)), status


@bp.get("/team/requests/<int:request_id>")
@roles("service_team")
def team_request(request_id: int):
    with runtime().db.session() as session:
        found = _team_request_or_404(session, request_id)
        audit.record(session, "service_request_opened", actor_id=current_user().id, episode_id=found.episode_id,
                     request=found.id)
        return _team_page(session, found)


@bp.post("/team/requests/<int:request_id>")
@roles("service_team")
def decide(request_id: int):
    with runtime().db.session() as session:
        found = _team_request_or_404(session, request_id)
        if not policy.may_decide(session, current_user(), found):
            deny(session, f"decide on service request {request_id}", 403)
        schema, ui = _decision_form(session, found)
    data, raw, problems = schema_form.parse_form(schema, ui, request.form)
    if problems:
        with runtime().db.session() as session:
            found = session.get(ServiceRequest, request_id)
            return _team_page(session, found, schema_form.build_form(schema, ui, data, problems, raw), 400)
    try:
        decision = requests_service.decide(runtime(), request_id, current_user(), data)
    except LookupError:
        abort(404)
    except requests_service.RequestRefused as refused:
        flash(str(refused), "important")
        return redirect(url_for("service_requests.team_request", request_id=request_id))
    if decision.errors:
        with runtime().db.session() as session:
            found = session.get(ServiceRequest, request_id)
            return _team_page(session, found, schema_form.build_form(schema, ui, data, decision.errors, raw), 400)
    flash("Your decision is recorded and the practitioner has been told.", "success")
    return redirect(url_for("service_requests.inbox"))


@bp.get("/team/requests/<int:request_id>/attachments/<int:attachment_id>")
@roles("service_team")
def team_download(request_id: int, attachment_id: int):
    with runtime().db.session() as session:
        found = _team_request_or_404(session, request_id)
        episode = session.get(Episode, found.episode_id)
        wanted = session.get(Attachment, attachment_id)
        if wanted is None or not policy.is_request_attachment(found, wanted.attached_to):
            deny(session, f"attachment {attachment_id} of service request {request_id}")
        opened = attachments.open_for_download(session, runtime().config, episode=episode,
                                               attachment_id=attachment_id, user=current_user())
        if opened is None:
            abort(404)
    return download_response(opened)
