"""Requests to services: who may ask, which services may be asked, and what a service team sees.

A service has no organisation of its own: the people who read a request are its team. So the
family's consent excludes a service when it names the service, or excludes the organisation (or
kind of organisation) of anyone on its team; otherwise the request would put the child's details
in front of someone the family said no to.
"""
from __future__ import annotations

from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import Session, aliased

from app.models import (ORGANISATION_KINDS, Consent, ConsentExclusion, Episode, HumanTask, Organisation, Service,
                        ServiceRequest, ServiceTeamMember, User)

from app import policy as _policy  # the package, read at call time: its account rules live elsewhere

from .episodes import member_role

from app.service_requests import OPEN_STAGES

_Team = aliased(ServiceTeamMember)
_TeamUser = aliased(User)
_TeamOrganisation = aliased(Organisation)
_Excluded = aliased(ConsentExclusion)
_RequestEpisode = aliased(Episode)


def why_not_requestable(episode: Episode) -> str | None:
    """None when the episode may ask a service for help now, else the reason it may not."""
    if not episode.is_open:
        return f"Episode {episode.reference} is {episode.status}: a closed episode cannot ask a service for help."
    if episode.stage not in OPEN_STAGES:
        return "A service can be asked for help once the assessment has started, and until the episode closes."
    if episode.consent_state != "given":
        return "The family's consent is needed before the episode's information is shared with a service."
    return None


def may_request(session: Session, user: User | None, episode: Episode) -> bool:
    """Practitioners working on the episode ask for help; administrators watch."""
    return (_policy.is_usable(user) and user.role == "practitioner"
            and member_role(session, user, episode) is not None)


def _team_excluded(service_id, episode_id):
    """SQL: someone on the service's team is from an organisation, or kind, the consent excludes."""
    return exists().where(
        _Team.service_id == service_id, _TeamUser.id == _Team.user_id,
        _TeamOrganisation.id == _TeamUser.organisation_id, _Excluded.episode_id == episode_id,
        or_(_Excluded.organisation_id == _TeamOrganisation.id,
            _Excluded.organisation_kind == _TeamOrganisation.kind))


def _user_excluded(user: User, episode_id):
    """SQL: the consent excludes the user's own organisation or its kind."""
    organisation = user.organisation
    if organisation is None:
        return false()
    return exists().where(_Excluded.episode_id == episode_id,
                          or_(_Excluded.organisation_id == organisation.id,
                              _Excluded.organisation_kind == organisation.kind))


def _excluded_names(session: Session, episode: Episode) -> set[str]:
    statement = session.scalar(select(Consent).where(Consent.episode_id == episode.id)
                               .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1))
    names = ((statement.excluded or {}).get("names") or []) if statement is not None else []
    return {str(name).strip().lower() for name in names if str(name).strip()}


def consent_excludes(session: Session, episode: Episode, service: Service) -> str | None:
    """Why the family's consent keeps this service out of the episode, or None when it does not."""
    if service.name.strip().lower() in _excluded_names(session, episode):
        return f"The family's consent excludes {service.name}: it cannot be asked for help in this episode."
    found = session.execute(
        select(_TeamOrganisation.name, _TeamOrganisation.kind, _Excluded.organisation_id)
        .join(_TeamUser, _TeamUser.organisation_id == _TeamOrganisation.id)
        .join(_Team, _Team.user_id == _TeamUser.id)
        .join(_Excluded, or_(_Excluded.organisation_id == _TeamOrganisation.id,
                             _Excluded.organisation_kind == _TeamOrganisation.kind))
        .where(_Team.service_id == service.id, _Excluded.episode_id == episode.id).limit(1)).first()
    if found is None:
        return None
    what = found.name if found.organisation_id is not None else ORGANISATION_KINDS.get(found.kind, found.kind)
    return (f"The family's consent excludes {what}, and {service.name}'s team includes people from it: "
            f"{service.name} cannot be asked for help in this episode.")


def offered_services(session: Session, episode: Episode) -> tuple[list[Service], dict[str, str]]:
    """The services the episode may ask (active, of its authority, not excluded by consent), and
    the excluded ones by name with the reason, so the form can say why they are missing."""
    offered, excluded = [], {}
    for service in session.scalars(select(Service).where(Service.authority_id == episode.authority_id,
                                                         Service.active).order_by(Service.name)):
        reason = consent_excludes(session, episode, service)
        if reason is None:
            offered.append(service)
        else:
            excluded[service.name] = reason
    return offered, excluded


def service_refusal(session: Session, episode: Episode, service: Service | None) -> str | None:
    """Why `service` may not be asked for help in `episode` (None: it may). A service that is not
    an active one of the episode's authority is answered as if it did not exist."""
    if service is None or not service.active or service.authority_id != episode.authority_id:
        return "Select the service to ask for help"
    return consent_excludes(session, episode, service)


def request_refusal(session: Session, episode: Episode, request: ServiceRequest) -> str | None:
    """Why an open request may not go on now that the consent has changed (None: it may)."""
    if episode.consent_state != "given":
        return "The family's consent no longer allows the episode's information to be shared with a service."
    return consent_excludes(session, episode, request.service)


def team_filter(user: User | None):
    """Requests the user's teams may see: those with one of their services, on an open or closed
    (never deleted) episode whose consent has not been withdrawn and does not exclude the service
    or the user; cancelled requests are no longer the team's."""
    if not _policy.is_usable(user) or user.role != "service_team":
        return false()
    mine = exists().where(ServiceTeamMember.service_id == ServiceRequest.service_id,
                          ServiceTeamMember.user_id == user.id)
    shared = exists().where(_RequestEpisode.id == ServiceRequest.episode_id, _RequestEpisode.status != "deleted",
                            _RequestEpisode.consent_state == "given")
    # At the top level, so each subquery correlates with the request row itself.
    return and_(mine, shared, ~_team_excluded(ServiceRequest.service_id, ServiceRequest.episode_id),
                ~_user_excluded(user, ServiceRequest.episode_id), ServiceRequest.status.not_in(("draft", "cancelled")))


def visible_to_team(session: Session, user: User | None, request_id: int) -> ServiceRequest | None:
    """The request if the user's team may see it, else None (the caller answers 404)."""
    found = session.scalar(select(ServiceRequest).where(ServiceRequest.id == request_id, team_filter(user)))
    return found if found is not None and shown_to_team(session, [found]) else None


def shown_to_team(session: Session, requests: list[ServiceRequest]) -> list[ServiceRequest]:
    """`requests` (already through team_filter) less those to a service the consent names: names
    are kept as the family gave them, so they are matched here rather than in SQL."""
    names: dict[int, set[str]] = {}
    shown = []
    for request in requests:
        if request.episode_id not in names:
            names[request.episode_id] = _excluded_names(session, session.get(Episode, request.episode_id))
        if request.service.name.strip().lower() not in names[request.episode_id]:
            shown.append(request)
    return shown


def is_team_member(session: Session, user: User | None, service_id: int) -> bool:
    return user is not None and session.scalar(select(ServiceTeamMember.id).where(
        ServiceTeamMember.service_id == service_id, ServiceTeamMember.user_id == user.id)) is not None


def team_task(session: Session, request: ServiceRequest) -> HumanTask | None:
    """The team's ready decision task on a request, if it is waiting for one."""
    return session.scalar(select(HumanTask).where(HumanTask.service_request_id == request.id,
                                                  HumanTask.name == "team_decision", HumanTask.status == "ready"))


def may_decide(session: Session, user: User | None, request: ServiceRequest) -> bool:
    """A member of the team the request is with now, while it waits for their decision."""
    return (visible_to_team(session, user, request.id) is not None
            and is_team_member(session, user, request.service_id) and team_task(session, request) is not None)


def redirect_target(session: Session, request: ServiceRequest, chosen) -> Service | None:
    """The service a team may pass the request to: another active service of the episode's
    authority that the family's consent does not exclude."""
    text = str(chosen or "")
    target = session.get(Service, int(text)) if text.isdigit() and len(text) < 12 else None
    episode = session.get(Episode, request.episode_id)
    if target is None or target.id == request.service_id or service_refusal(session, episode, target) is not None:
        return None
    return target


def is_request_attachment(request: ServiceRequest, attached_to: str | None) -> bool:
    """A team downloads only the files attached to the request they may see."""
    return attached_to == f"service_request:{request.id}"



def has_team_inbox(user: User | None) -> bool:
    """A service team account works requests from its team inbox (what reaches it: `team_filter`)."""
    return user is not None and user.role == "service_team"


def team_recipients(service: Service) -> set[str]:
    """Who hears of a request to `service`: its contact address and the team members whose accounts
    may be used (a disabled, locked or unvetted member is not sent the episode's news)."""
    return {service.contact_email} | {m.user.email for m in service.members if _policy.is_usable(m.user)}
