"""What a consent change does to work already under way on an episode.

A new statement that excludes a service, or a withdrawal, cancels the open requests the policy no
longer allows (the team and the practitioner are told, and the team no longer sees them), and
an invited contributor the consent now shuts out loses the contribution and its task. Runs in
the transaction of the consent change, after the episode row is locked, so a request started at
the same moment is either refused by its own check or cancelled here.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import audit, outbox, policy
from app.clock import now
from app.engine.context import current_step
from app.models import Contribution, Episode, HumanTask, ServiceRequest
from app.policy.contributions import OPEN_CONTRIBUTION_STATUSES
from app.service_requests import OPEN_REQUEST_STATUSES


def apply(session: Session, episode: Episode, *, actor_id: int | None) -> None:
    """Cancel what the episode's consent, as it now stands, no longer allows."""
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Episode.id).where(Episode.id == episode.id).with_for_update())
    for request in session.scalars(select(ServiceRequest).where(
            ServiceRequest.episode_id == episode.id, ServiceRequest.status.in_(OPEN_REQUEST_STATUSES))
            .order_by(ServiceRequest.id)).all():
        reason = policy.request_refusal(session, episode, request)
        if reason is not None:
            _cancel_request(session, episode, request, reason, actor_id)
    for contribution in session.scalars(select(Contribution).where(
            Contribution.episode_id == episode.id, Contribution.status.in_(OPEN_CONTRIBUTION_STATUSES))
            .order_by(Contribution.id)).all():
        reason = policy.contribution_refusal(session, episode, contribution)
        if reason is not None:
            _cancel_contribution(session, episode, contribution, reason, actor_id)


def _close_tasks(session: Session, **owner) -> None:
    """Its ready tasks go with it (the projection never makes them again for a cancelled row)."""
    column, row_id = next(iter(owner.items()))
    session.execute(update(HumanTask).where(getattr(HumanTask, column) == row_id, HumanTask.status == "ready")
                    .values(status="cancelled", completed_at=now()))


def _cancel_request(session: Session, episode: Episode, request: ServiceRequest, reason: str,
                    actor_id: int | None) -> None:
    was = request.status
    request.status, request.decision_reason, request.decided_at = "cancelled", reason, now()
    _close_tasks(session, service_request_id=request.id)
    audit.record(session, "service_request_cancelled", actor_id=actor_id, episode_id=episode.id,
                 request=request.id, service=request.service.name, was=was, why="consent")
    ref, service = episode.reference, request.service
    if was != "draft":  # a draft never reached the team
        team = policy.team_recipients(service)
        for email in sorted(filter(None, team)):
            _tell(session, episode, "service_request_cancelled", email, request.id,
                  f"eCAF {ref}: a request to {service.name} is cancelled",
                  f"The request about episode {ref} to {service.name} is cancelled: the family's consent no "
                  "longer allows its information to be shared with your service. It is no longer listed.")
    _tell(session, episode, "service_request_cancelled", request.requested_by.email, request.id,
          f"eCAF {ref}: your request to {service.name} is cancelled",
          f"Your request to {service.name} is cancelled because of a change to the family's consent. "
          "Sign in to eCAF to read why.")


def _cancel_contribution(session: Session, episode: Episode, contribution: Contribution, reason: str,
                         actor_id: int | None) -> None:
    was = contribution.status
    contribution.status, contribution.decided_at = "cancelled", now()
    _close_tasks(session, contribution_id=contribution.id)
    audit.record(session, "contribution_cancelled", actor_id=actor_id, episode_id=episode.id,
                 contribution=contribution.id, contributor=contribution.contributor_id, was=was, why="consent")
    _tell(session, episode, "contribution_cancelled", contribution.contributor.email, contribution.id,
          f"eCAF {episode.reference}: your contribution is no longer needed",
          f"The invitation to contribute to episode {episode.reference} is withdrawn because of a change "
          "to the family's consent.")


def _tell(session: Session, episode: Episode, kind: str, recipient: str | None, row_id: int, subject: str,
          body: str) -> None:
    """An email through the outbox (episode reference only, never the child's details); in a
    step it is delivered straight after the step commits, otherwise by the next sweep."""
    if not recipient:
        return
    message = outbox.queue_email(session, kind=kind, recipient=recipient, subject=subject, body=body,
                                 key=f"{kind}:{row_id}:{recipient}", episode_id=episode.id)
    try:
        step = current_step()
    except RuntimeError:
        return
    if message.id not in step.outbox:
        step.outbox.append(message.id)
