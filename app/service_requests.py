"""Requests from an episode to a targeted or specialist service: the rules around them.

The episode's workflow runs each request (the called `service_request` process); this module
says who may start one, what the request form starts from, what evidence is missing, and which
team members may act on it. The team sees a request only while the family's consent stands.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from app.models import Artefact, Episode, HumanTask, Service, ServiceRequest, ServiceTeamMember, User

OPEN_STAGES = ("assessment", "delivery")
OPEN_REQUEST_STATUSES = ("draft", "sent", "more_information")
STATUS_LABELS = {"draft": "Being written", "sent": "With the service", "more_information": "More information asked for",
                 "accepted": "Accepted", "declined": "Declined", "cancelled": "Cancelled"}


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` working days (Monday to Friday) after `start`, at the same time of day."""
    current, left = start, max(days, 0)
    while left:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def why_not_requestable(episode: Episode) -> str | None:
    """None when the episode may ask a service for help now, else the reason it may not."""
    if not episode.is_open:
        return f"Episode {episode.reference} is {episode.status}: a closed episode cannot ask a service for help."
    if episode.stage not in OPEN_STAGES:
        return "A service can be asked for help once the assessment has started, and until the episode closes."
    if episode.consent_state != "given":
        return "The family's consent is needed before the episode's information is shared with a service."
    return None


def services_for(session: Session, episode: Episode) -> list[Service]:
    return session.scalars(select(Service).where(Service.authority_id == episode.authority_id, Service.active)
                           .order_by(Service.name)).all()


def redirect_target(session: Session, request: ServiceRequest, chosen) -> Service | None:
    """The service a team may pass the request to: another active service of the episode's authority."""
    text = str(chosen or "")
    target = session.get(Service, int(text)) if text.isdigit() else None
    episode = session.get(Episode, request.episode_id)
    if target is None or not target.active or target.authority_id != episode.authority_id \
            or target.id == request.service_id:
        return None
    return target


def is_team_member(session: Session, user: User | None, service_id: int) -> bool:
    return user is not None and session.scalar(select(ServiceTeamMember.id).where(
        ServiceTeamMember.service_id == service_id, ServiceTeamMember.user_id == user.id)) is not None


def team_filter(user: User):
    """Requests the user's teams may see: those with one of their services, on an open or closed
    (never deleted) episode whose consent has not been withdrawn."""
    mine = exists().where(ServiceTeamMember.service_id == ServiceRequest.service_id,
                          ServiceTeamMember.user_id == user.id)
    shared = exists().where(Episode.id == ServiceRequest.episode_id, Episode.status != "deleted",
                            Episode.consent_state == "given")
    return and_(mine, shared, ServiceRequest.status != "draft")


def team_task(session: Session, request: ServiceRequest) -> HumanTask | None:
    """The team's ready decision task on a request, if it is waiting for one."""
    return session.scalar(select(HumanTask).where(HumanTask.service_request_id == request.id,
                                                  HumanTask.name == "team_decision", HumanTask.status == "ready"))


def _latest(session: Session, episode_id: int, kind: str) -> Artefact | None:
    return session.scalar(select(Artefact).where(Artefact.episode_id == episode_id, Artefact.kind == kind)
                          .order_by(Artefact.version.desc()).limit(1))


def _assessment_data(session: Session, episode: Episode) -> dict:
    stored = _latest(session, episode.id, "assessment")
    if stored is not None:
        return stored.data or {}
    draft = session.scalar(select(HumanTask.draft).where(
        HumanTask.episode_id == episode.id, HumanTask.name == "complete_assessment", HumanTask.status == "ready"))
    return (draft or {}).get("data") or {}


def _text(value) -> str:
    if isinstance(value, dict):
        return "\n".join(t for t in (_text(v) for v in value.values()) if t)
    if isinstance(value, list):
        return "\n".join(t for t in (_text(v) for v in value) if t)
    return "" if value is None or isinstance(value, bool) else str(value).strip()


def prefill(session: Session, request: ServiceRequest) -> dict:
    """The request form as far as eCAF already knows it: the last version sent, or else the
    assessment's needs and conclusions, the services already involved, and one evidence row per
    item the service asks for."""
    if request.content:
        return dict(request.content)
    episode = session.get(Episode, request.episode_id)
    assessment = _assessment_data(session, episode)
    summary = "\n\n".join(t for t in (_text(assessment.get("section_h_strengths_needs")),
                                       _text(assessment.get("section_i_conclusions"))) if t)
    plan = _latest(session, episode.id, "action_plan")
    in_place = _text(assessment.get("section_g_services"))
    if plan is not None:
        in_place = "\n\n".join(t for t in (in_place, _text(plan.data)) if t)
    data = {"evidence": [{"requirement": item} for item in request.service.required_evidence or []]}
    if summary:
        data["assessment_summary"] = summary[:20000]
    if in_place:
        data["support_in_place"] = in_place[:5000]
    return data


def attachment_key(request: ServiceRequest | int) -> str:
    return f"service_request:{request if isinstance(request, int) else request.id}"


def missing_evidence(service: Service, data: dict) -> list[str]:
    """Items the service asks for that the request gives no evidence for (attached documents are
    named in an item's text, e.g. "Attached: school report")."""
    given = {(row.get("requirement") or "").strip().lower() for row in data.get("evidence") or []
             if (row.get("evidence") or "").strip()}
    return [item for item in service.required_evidence or [] if item.strip().lower() not in given]
