"""Transfers asked, decided, fetched and imported by a client system for its authority (/api/v1/transfers).

The same services and rules as the pages (app/services/transfers/, app/policy/transfers.py), with the
client in place of a person: it acts as its authority's administrator would, and every row it causes
in the audit trail names it. A request the client may not see is answered as one that does not exist,
and the refusal is audited as the pages audit theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.config import Config
from app.models import ApiClient, Episode, TransferRequest
from app.services.transfers import export as export_service
from app.services.transfers import requests as service
from app.services.transfers.apply import import_episode
from app.services.transfers.common import acted_by
from app.uk_time import date_time

# Ids above this are no row's: PostgreSQL's integer would overflow on them.
LARGEST_ID = 2**31 - 1


class NotVisible(LookupError):
    """No such request, or none this client may see or act on (answered alike)."""


@dataclass
class ReleaseNotLive(Exception):
    """The request's release cannot give a file now; `gone` when it expired (it will never again)."""

    message: str
    gone: bool = False


@dataclass(frozen=True)
class RequestSeen:
    """A request as one side sees it: the asking side learns no episode until it is released."""

    row: TransferRequest
    deciding: bool
    status: str
    release_problem: str | None


def _live_client(session: Session, client_id: int) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if not policy.is_transfer_client(client):
        raise NotVisible(f"client {client_id} may not act on transfers")
    return client


def record_denial(session: Session, client_id: int, asked_for: str) -> None:
    client = session.get(ApiClient, client_id)
    audit.record(session, "access_denied", **acted_by(client), asked_for=asked_for)


def _visible(session: Session, client: ApiClient, request_id: int) -> TransferRequest:
    found = session.get(TransferRequest, request_id) if 0 < request_id <= LARGEST_ID else None
    if found is None or not policy.may_see_transfer_request(session, client, found):
        raise NotVisible(f"transfer request {request_id}")
    return found


def shown_status(row: TransferRequest, moment: datetime) -> str:
    """The status the pages show: a release past its expiry is "expired" without a write."""
    if row.status == "released" and not row.live(moment):
        return "expired"
    return row.status


def _seen(session: Session, client: ApiClient, row: TransferRequest) -> RequestSeen:
    deciding = policy.may_decide_transfer(session, client, row.episode)
    problem = service.release_problem(session, row.episode) if deciding and row.status == "requested" else None
    return RequestSeen(row, deciding, shown_status(row, now()), problem)


def ask(session: Session, client_id: int, *, reference: str, given_names: str, family_name: str,
        date_of_birth: date, reason: str) -> RequestSeen:
    """Record the request as the web form does (RequestProblems when a field is wrong)."""
    client = _live_client(session, client_id)
    row = service.request_transfer(session, client, reference, given_names, family_name, date_of_birth, reason)
    return RequestSeen(row, False, row.status, None)


def listed(session: Session, client_id: int) -> tuple[list[RequestSeen], list[RequestSeen]]:
    """Requests to decide, and requests the client's authority made; one audit row each, as the pages."""
    client = _live_client(session, client_id)
    incoming, outgoing = service.incoming(session, client), service.outgoing(session, client)
    for page, rows, with_episodes in (("transfer_requests_to_decide", incoming, True),
                                      ("transfer_requests_made", outgoing, False)):
        episodes = sorted({r.episode_id for r in rows if r.episode_id}) if with_episodes else []
        if rows:
            audit.record(session, "episodes_listed", **acted_by(client),
                         episode_id=episodes[0] if len(episodes) == 1 else None, page=page, episodes=episodes,
                         transfer_requests=[r.id for r in rows])
    return [_seen(session, client, r) for r in incoming], [_seen(session, client, r) for r in outgoing]


def one(session: Session, client_id: int, request_id: int) -> RequestSeen:
    client = _live_client(session, client_id)
    seen = _seen(session, client, _visible(session, client, request_id))
    audit.record(session, "transfer_request_viewed", **acted_by(client),
                 episode_id=seen.row.episode_id if seen.deciding else None, request_id=seen.row.id)
    return seen


def decide(session: Session, client_id: int, request_id: int, decision: str, reason: str) -> RequestSeen:
    """Release or decline, by a client of the episode's authority (RequestProblems and its kinds)."""
    client = _live_client(session, client_id)
    found = _visible(session, client, request_id)
    if not policy.may_decide_transfer(session, client, found.episode):
        raise NotVisible(f"decide transfer request {request_id}")
    service.decide(session, client, found, decision, reason)
    return _seen(session, client, found)


def signed_file(session: Session, client_id: int, request_id: int, config: Config) -> tuple[dict, str]:
    """The signed transfer file and its episode's reference, while the release is live, for a client
    of the sending authority or of the authority it was released to. TransferKeyMissing without a key."""
    client = _live_client(session, client_id)
    found = _visible(session, client, request_id)
    if found.status in ("requested", "declined"):
        raise ReleaseNotLive(f"The request is {found.status}: there is no transfer file until the episode is "
                             "released")
    if not policy.may_fetch_transfer_file(session, client, found):
        raise NotVisible(f"transfer file of request {request_id}")
    if found.status == "used":
        raise ReleaseNotLive(f"The release was used on {date_time(found.used_at)}: the episode has moved, and a "
                             "release moves it once")
    if found.episode is None or found.episode.status == "deleted":
        # Deleting an episode ends its sharing: what is left of it (its people, its dates) is no file.
        raise ReleaseNotLive("The released episode is no longer held in eCAF: ask the authority the child has "
                             "left", gone=True)
    if not found.live(now()):
        raise ReleaseNotLive(f"The release expired on {date_time(found.expires_at)}: ask for the episode again",
                             gone=True)
    document = export_service.export_for_transfer(session, found, client, config)
    return document, found.episode.reference


def import_document(runtime, client_id: int, document: dict, lead_professional_email: str) -> Episode:
    """Import a signed file into the client's authority (TransferRefused, audited, when it may not)."""
    return import_episode(runtime, document, None, lead_professional_email, client_id=client_id)
