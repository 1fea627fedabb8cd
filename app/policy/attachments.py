"""Evidence files attached to an episode: who may list, upload and download them, and which file
belongs where. A file is reached only through an episode the user may attach to, and only as that
episode's own (or, from a request's page, as that request's own) file. What a service team may
download is a rule about requests: `service_requests.is_request_attachment`."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Attachment, Episode, ServiceRequest, User

from .episodes import is_administrator_of, may, member_role


def may_attach(session: Session, user: User | None, episode: Episode) -> bool:
    """List, upload and download an episode's files: anyone who may see the episode as one of its
    members, or as an administrator of its authority (never a process owner or a service team)."""
    return may(session, user, "view", episode) and (
        member_role(session, user, episode) is not None or is_administrator_of(user, episode.authority_id))


def is_attachment_of(attachment: Attachment | None, episode: Episode) -> bool:
    """A file is downloaded only under its own episode: another episode's id answers as not found."""
    return attachment is not None and attachment.episode_id == episode.id


def is_request_of(service_request: ServiceRequest | None, episode: Episode) -> bool:
    """Files are shown as evidence for a request only when the request is of this episode."""
    return service_request is not None and service_request.episode_id == episode.id
