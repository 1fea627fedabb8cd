"""Requests from an episode to a targeted or specialist service: the rules around them.

The episode's workflow runs each request (the called `service_request` process); this module
says what the request form starts from and what evidence is missing. Who may ask, which services
may be asked and what a team sees are the policy's (`app/policy/service_requests.py`).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Artefact, Episode, HumanTask, Service, ServiceRequest

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
