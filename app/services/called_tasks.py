"""What the task form adds for a task of a called process (a service request or a contribution):
its own form, what it starts from, what the practitioner needs to see beside it, and its own rules."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import contributions, policy, service_requests
from app.models import Attachment, Contribution, Episode, HumanTask, ServiceRequest


@dataclass
class Panel:
    """Shown above the form."""

    kind: str  # "service_request" or "contribution"
    title: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (label, text)
    evidence: list[str] = field(default_factory=list)
    attachments: int = 0
    request_id: int | None = None
    contribution: Contribution | None = None
    summary: list = field(default_factory=list)  # a contribution's answers, for its review


def form_for(session: Session, episode: Episode, task: HumanTask, schema: dict, ui: dict | None):
    """A contribution's form is the assessment's, cut down to the invited sections."""
    if task.contribution_id is not None and task.name == "write_contribution":
        return contributions.form_for(episode, session.get(Contribution, task.contribution_id))
    return schema, ui


def prefill(session: Session, task: HumanTask) -> dict:
    if task.service_request_id is not None and task.name == "request_form":
        return service_requests.prefill(session, session.get(ServiceRequest, task.service_request_id))
    if task.contribution_id is not None and task.name == "write_contribution":
        return contributions.prefill(session, session.get(Contribution, task.contribution_id))
    return {}


def panel(session: Session, task: HumanTask) -> Panel | None:
    if task.service_request_id is not None:
        request = session.get(ServiceRequest, task.service_request_id)
        service = request.service
        shown = Panel("service_request", f"Request to {service.name}", request_id=request.id,
                      evidence=list(service.required_evidence or []),
                      attachments=session.scalar(select(func.count()).select_from(Attachment).where(
                          Attachment.attached_to == service_requests.attachment_key(request))) or 0)
        shown.lines.append(("What the service offers", service.offers))
        shown.lines.append(("Response time", f"{service.response_working_days} working days"))
        if request.status == "more_information" and request.question:
            shown.lines.append(("The team's question", request.question))
        return shown
    if task.contribution_id is not None:
        row = session.get(Contribution, task.contribution_id)
        episode = session.get(Episode, row.episode_id)
        names = contributions.sections_of(episode)
        shown = Panel("contribution", "Contribution to the assessment", contribution=row)
        shown.lines.append(("Sections", ", ".join(names.get(s, s) for s in row.sections)))
        shown.lines.append(("Invited by", row.invited_by.full_name))
        shown.lines.append(("Written by", row.contributor.full_name))
        if row.note:
            shown.lines.append(("Note" if row.status != "returned" else "Returned with this note", row.note))
        return shown
    return None


def problems(session: Session, task: HumanTask, data: dict) -> list[dict]:
    """A request without the evidence its service asks for is sent only with a reason."""
    if task.service_request_id is None or task.name != "request_form":
        return []
    request = session.get(ServiceRequest, task.service_request_id)
    # The service's team may have changed since the request was started.
    if (refused := policy.request_refusal(session, session.get(Episode, request.episode_id), request)) is not None:
        return [{"field": "needs", "message": refused}]
    missing = service_requests.missing_evidence(request.service, data)
    if missing and not (data.get("send_without_evidence") or "").strip():
        return [{"field": "send_without_evidence",
                 "message": f"{request.service.name} asks for evidence this request does not give: "
                            f"{'; '.join(missing)}. Add it under Evidence, or say why you are sending the "
                            "request without it"}]
    return []
