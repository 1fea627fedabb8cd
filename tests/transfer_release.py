"""Test helpers for released transfers: ask for an episode, release it, and get its signed file."""
from __future__ import annotations

from app.models import Episode, TransferRequest, User
from app.services.transfers import export as export_service
from app.services.transfers import requests as requests_service


def ask(runtime, episode_id: int, asker_id: int, reason: str = "The family moved here last month") -> int:
    """A request for the episode by an administrator of the receiving authority; returns its id."""
    with runtime.db.session() as session:
        child = session.get(Episode, episode_id).child
        made = requests_service.request_transfer(
            session, session.get(User, asker_id), session.get(Episode, episode_id).reference, child.given_names,
            child.family_name, child.date_of_birth, reason)
        return made.id


def release(runtime, request_id: int, releaser_id: int, reason: str = "Confirmed with the family") -> str:
    """Release the request; returns the release id."""
    with runtime.db.session() as session:
        request = session.get(TransferRequest, request_id)
        requests_service.decide(session, session.get(User, releaser_id), request, "release", reason)
        return request.release_id


def signed_file(runtime, request_id: int, user_id: int) -> dict:
    """The transfer file of a released request, as `user_id` would download it."""
    with runtime.db.session() as session:
        return export_service.export_for_transfer(session, session.get(TransferRequest, request_id),
                                                  session.get(User, user_id), runtime.config)


def released_file(runtime, episode_id: int, asker_id: int, releaser_id: int) -> dict:
    """Ask, release and export in one go: the signed file the receiving authority is sent."""
    request_id = ask(runtime, episode_id, asker_id)
    release(runtime, request_id, releaser_id)
    return signed_file(runtime, request_id, releaser_id)
