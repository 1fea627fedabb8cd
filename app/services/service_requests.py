"""Asking a service for help from an episode, and the service team's side of a request."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.engine.errors import EpisodeNotOpen, FormInvalid, NotPermitted, TaskAlreadyDone, TaskNotReady
from app.models import Attachment, Episode, Service, ServiceRequest, User
from app.service_requests import attachment_key
from app.services import called_processes


class RequestRefused(ValueError):
    """A request that cannot be made or acted on now; the message says why."""


def start_request(runtime, episode_id: int, user: User, service_id: int | None) -> int:
    """Create the request (committed, so the process can find it), then start its process. A
    refusal naming a service the form did not offer is audited (committed) before it is raised."""
    refused = None
    with runtime.db.session() as session:
        if runtime.db.is_postgresql:
            # A consent change holds this lock too: the check below sees it, or it sees this request.
            session.execute(select(Episode.id).where(Episode.id == episode_id).with_for_update())
        episode = policy.visible_episode(session, user, episode_id)
        if episode is None or not policy.may_request(session, user, episode):
            raise LookupError(episode_id)
        if (reason := policy.why_not_requestable(episode)) is not None:
            raise RequestRefused(reason)
        service = session.get(Service, service_id) if service_id else None
        if (refused := policy.service_refusal(session, episode, service)) is not None:
            if service is not None:  # a service the form did not offer: a forged or stale post
                audit.record(session, "service_request_refused", actor_id=user.id, episode_id=episode.id,
                             service_id=service.id, reason=refused)
        else:
            request = ServiceRequest(episode_id=episode.id, service_id=service.id, requested_by_id=user.id,
                                     status="draft", created_at=now())
            session.add(request)
            session.flush()
            audit.record(session, "service_request_started", actor_id=user.id, episode_id=episode.id,
                         request=request.id, service=service.name)
            request_id = request.id
    if refused is not None:  # raised after the commit, so the audit row stays
        raise RequestRefused(refused)
    try:
        called_processes.start(runtime, ServiceRequest, request_id, episode_id, "service_request", user.id)
    except called_processes.REFUSALS as exc:
        raise RequestRefused(f"The request could not be started: {exc}") from exc
    return request_id


def for_episode(session: Session, episode: Episode) -> list[ServiceRequest]:
    return session.scalars(select(ServiceRequest).where(ServiceRequest.episode_id == episode.id)
                           .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())).all()


@dataclass
class InboxRow:
    request: ServiceRequest
    episode: Episode
    waiting: bool  # the team's decision is due


def inbox(session: Session, user: User, *, show_all: bool = False) -> list[InboxRow]:
    """The requests to the user's services: those waiting for a decision first, by due date."""
    query = select(ServiceRequest).where(policy.team_filter(user))
    if not show_all:
        query = query.where(ServiceRequest.status.in_(("sent", "more_information")))
    rows = policy.shown_to_team(session, session.scalars(query.order_by(
        ServiceRequest.due_at.is_(None), ServiceRequest.due_at, ServiceRequest.id).limit(500)).all())
    return [InboxRow(r, session.get(Episode, r.episode_id), r.status == "sent") for r in rows]


def visible_to_team(session: Session, user: User, request_id: int) -> ServiceRequest | None:
    return policy.visible_to_team(session, user, request_id)


def attachments_of(session: Session, request: ServiceRequest) -> list[Attachment]:
    return session.scalars(select(Attachment).where(Attachment.episode_id == request.episode_id,
                                                    Attachment.attached_to == attachment_key(request))
                           .order_by(Attachment.uploaded_at)).all()


@dataclass
class Decision:
    typed: dict
    errors: list[dict] = field(default_factory=list)


def decide(runtime, request_id: int, user: User, data: dict) -> Decision:
    """The team's decision on a request. Only a member of the service the request is with now
    may decide; a redirect must name another active service of the same authority."""
    decision = Decision(data)
    with runtime.db.session() as session:
        request = policy.visible_to_team(session, user, request_id)
        if request is None or not policy.is_team_member(session, user, request.service_id):
            raise LookupError(request_id)
        task = policy.team_task(session, request)
        if task is None or not policy.may_decide(session, user, request):
            raise RequestRefused("This request is not waiting for your team's decision.")
        episode_id, task_id = request.episode_id, task.id
        if data.get("decision") == "redirect" and data.get("redirect_to") \
                and policy.redirect_target(session, request, data["redirect_to"]) is None:
            decision.errors.append({"field": "redirect_to", "message": "Select another service of this authority"})
            return decision

    def still_theirs(session: Session, row) -> bool:
        # Asked again in the step that records the decision: a consent change or a team change
        # since the checks above wins.
        request = session.get(ServiceRequest, request_id)
        return (row.service_request_id == request_id and row.name == "team_decision"
                and policy.may_decide(session, session.get(User, user.id), request))

    try:
        runtime.engine.complete_task(episode_id, task_id, data, user.id, guard=still_theirs)
    except NotPermitted as exc:
        raise LookupError(request_id) from exc
    except FormInvalid as exc:
        decision.errors = exc.errors
    except (TaskAlreadyDone, TaskNotReady, EpisodeNotOpen) as exc:
        raise RequestRefused(f"Your decision was not recorded: {exc}.") from exc
    return decision
