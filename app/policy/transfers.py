"""Moving a child's episode between authorities, and subject access: who may ask, release, import and read.

- The receiving authority's administrator asks for an episode and imports it once released.
- The sending authority's administrator, or the episode's current lead professional, releases or
  declines; nobody else on the sending side (not the originator, a team member or a contributor).
- A request is seen by the administrators of the authority that asked and by those who may decide
  it; anyone else gets 404, as for a request that does not exist.
- Subject access: administrators of the child's home authority or of an authority holding one of
  the child's episodes.
- A client system with the `transfers` scope, while live, acts for its authority as that authority's
  administrator would: it asks and imports for it, and releases or declines requests for its episodes.
  The signed file is also given to a client of the authority a live release names, so that two case
  systems can move an episode with no file carried by hand. A shielded child's episode is the
  exception: as on the index, a client system never sees one, so only a person releases it, sends
  its file and imports it.
"""
from __future__ import annotations

from sqlalchemy import and_, exists, false, select, true
from sqlalchemy.orm import Session

from app.clock import now
from app.models import ApiClient, Child, Episode, TransferRequest, User
from app.uk_time import local

from .accounts import is_usable
from .api_clients import client_may, is_live_client
from .episodes import authority_id_of, episode_filter, is_administrator_of, visible_episode


def may_see_child(session: Session, user: User | None, child: Child) -> bool:
    """Administrators of the child's home authority, or of an authority holding one of its episodes."""
    authority_id = authority_id_of(user)
    if not is_administrator_of(user, authority_id):
        return False
    if child.home_authority_id == authority_id:
        return True
    return session.scalar(select(Episode.id).where(Episode.child_id == child.id,
                                                   Episode.authority_id == authority_id).limit(1)) is not None


TRANSFERS_SCOPE = "transfers"


def is_transfer_client(actor: User | ApiClient | None) -> bool:
    """A live client system holding the transfers scope (a revoked or expired one is nobody)."""
    return (isinstance(actor, ApiClient) and is_live_client(actor, local(now()).date())
            and client_may(actor, TRANSFERS_SCOPE))


def _shielded(episode: Episode | None) -> bool:
    return episode is not None and episode.child is not None and bool(episode.child.shielded)


def may_import_for(actor: User | ApiClient | None, episode: Episode) -> bool:
    """A client system never handles a shielded child's episode, even from a file a person sent it."""
    return not (isinstance(actor, ApiClient) and _shielded(episode))


def acting_authority_id(actor: User | ApiClient | None) -> int | None:
    """The authority a person or a client system acts for."""
    if isinstance(actor, ApiClient):
        return actor.authority_id if is_transfer_client(actor) else None
    return authority_id_of(actor)


def may_receive_transfers(actor: User | ApiClient | None) -> bool:
    """Asking for an episode and importing it: an administrator of a local authority, or a transfer
    client of it, for that authority."""
    if isinstance(actor, ApiClient):
        return is_transfer_client(actor)
    return is_administrator_of(actor, authority_id_of(actor))


def may_lead_moved_episode(user: User | None, authority_id: int | None) -> bool:
    """Who the importing administrator may name as the moved episode's lead professional: a usable
    practitioner of the receiving authority (the family's exclusions are checked against the file)."""
    return (is_usable(user) and user.role == "practitioner" and authority_id is not None
            and authority_id_of(user) == authority_id)


def may_decide_transfer(session: Session, user: User | ApiClient | None, episode: Episode | None) -> bool:
    """Releasing or declining a request for `episode` (and downloading its transfer file): an
    administrator of the episode's authority, or its current lead professional while they may open it."""
    if isinstance(user, ApiClient):
        return (episode is not None and episode.status != "deleted" and is_transfer_client(user)
                and episode.authority_id == user.authority_id and not _shielded(episode))
    if episode is None or not is_usable(user) or episode.status == "deleted":
        return False
    if user.role == "administrator":
        return is_administrator_of(user, episode.authority_id)
    return (user.role == "practitioner" and episode.lead_professional_id == user.id
            and visible_episode(session, user, episode.id) is not None)


def may_see_transfer_request(session: Session, user: User | ApiClient | None, request: TransferRequest) -> bool:
    if may_receive_transfers(user) and request.to_authority_id == acting_authority_id(user):
        return True
    return may_decide_transfer(session, user, request.episode)


def may_fetch_transfer_file(session: Session, actor: User | ApiClient | None, request: TransferRequest) -> bool:
    """The signed file of a released request: whoever may decide it, and a transfer client of the
    authority it was released to (a person there is sent the file; a case system fetches it)."""
    if may_decide_transfer(session, actor, request.episode):
        return True
    return (is_transfer_client(actor) and request.status in ("released", "used")
            and is_released_to(request, actor.authority_id) and not _shielded(request.episode))


def is_released_to(release: TransferRequest, authority_id: int | None) -> bool:
    """A released episode is imported only by the authority it was released to."""
    return authority_id is not None and release.to_authority_id == authority_id


def incoming_transfer_filter(user: User | ApiClient | None):
    """A WHERE clause (over TransferRequest joined to Episode) for requests `user` may decide."""
    if isinstance(user, ApiClient):
        if not is_transfer_client(user):
            return false()
        shielded = exists().where(Child.id == Episode.child_id, Child.shielded == true())
        return and_(Episode.authority_id == user.authority_id, Episode.status != "deleted", ~shielded)
    if not is_usable(user):
        return false()
    if user.role == "administrator":
        return and_(Episode.authority_id == authority_id_of(user), Episode.status != "deleted")
    if user.role == "practitioner":
        return and_(Episode.lead_professional_id == user.id, episode_filter(user))
    return false()


def outgoing_transfer_filter(user: User | ApiClient | None):
    """A WHERE clause (over TransferRequest) for the requests `user`'s authority made."""
    if not may_receive_transfers(user):
        return false()
    return TransferRequest.to_authority_id == acting_authority_id(user)


__all__ = ["TRANSFERS_SCOPE", "acting_authority_id", "incoming_transfer_filter", "is_released_to",
           "is_transfer_client", "may_decide_transfer", "may_fetch_transfer_file", "may_lead_moved_episode",
           "may_receive_transfers", "may_see_child", "may_see_transfer_request", "outgoing_transfer_filter"]
