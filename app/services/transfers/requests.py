"""Requests to move an episode, and their release or refusal.

The receiving authority's administrator asks, naming the episode's reference and the child. What they
typed is all they see until the sending side decides: a request that matches no open episode of
another authority is kept and shown exactly like one waiting for an answer, so the form tells nobody
whether a CAF exists. The sending authority's administrator, or the episode's lead professional,
releases it (for RELEASE_DAYS days, to the authority that asked) or declines it, with a reason.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.uk_time import local
from app.models import ApiClient, Authority, Child, Episode, TransferRequest, User

from .checks import check_nothing_pending, check_source_open
from .common import TransferRefused, acted_by, user_id_of

RELEASE_DAYS = 14
REASON_LIMIT = 2000
LIST_LIMIT = 100
# ASCII digits only: "\d" alone takes any script's digits ("TST-٠٠٠٠٠١"), a reference that reads as
# another yet matches episode 1.
_REFERENCE = re.compile(r"^([A-Z0-9]{1,20})-([0-9]{1,12})$")
_LARGEST_ID = 2**31 - 1


@dataclass
class RequestProblems(Exception):
    """What is wrong with a request form or a decision, by field."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(self.errors.values())


class AlreadyDecided(RequestProblems):
    """Someone decided the request first: nothing was changed."""


class NotReleasable(RequestProblems):
    """The episode cannot be released now (the import would refuse it): why, under "decision"."""


def _asker(actor: User | ApiClient) -> dict:
    if isinstance(actor, ApiClient):
        return {"requested_by_client_id": actor.id}
    return {"requested_by_id": actor.id}


def request_transfer(session: Session, user: User | ApiClient, reference: str, given_names: str, family_name: str,
                     date_of_birth: date | None, reason: str) -> TransferRequest:
    """Record the request. The caller has checked `policy.may_receive_transfers`."""
    reference = (reference or "").strip().upper()
    errors = {}
    if not _REFERENCE.match(reference):
        errors["reference"] = "Enter the episode's reference as the other authority gave it, like ABC-000123"
    if not (given_names or "").strip():
        errors["given_names"] = "Enter the child's first names"
    if not (family_name or "").strip():
        errors["family_name"] = "Enter the child's last name"
    if date_of_birth is None:
        errors["date_of_birth"] = "Enter the child's date of birth"
    if not (reason or "").strip():
        errors["reason"] = "Enter why the episode should move to your authority"
    elif len(reason) > REASON_LIMIT:
        errors["reason"] = f"The reason must be {REASON_LIMIT} characters or fewer"
    if errors:
        raise RequestProblems(errors)
    authority_id = policy.acting_authority_id(user)
    waiting = _waiting_request(session, authority_id, reference, given_names.strip(), family_name.strip(),
                               date_of_birth)
    if waiting is not None:
        # Judged on what this authority typed before, never on what matched: it reveals nothing, and one
        # authority cannot crowd the holder's list with the same request over and over.
        raise RequestProblems({"reference": f"Your authority asked for {reference} for this child on "
                                            f"{local(waiting.requested_at):%d %B %Y}: that request is waiting for "
                                            "an answer"})
    episode = _matching_episode(session, reference, given_names.strip(), family_name.strip(), date_of_birth)
    if episode is not None and episode.authority_id == authority_id:
        # The administrator can open this episode anyway: saying so reveals nothing.
        raise RequestProblems({"reference": f"Episode {reference} already belongs to your authority"})
    row = TransferRequest(reference=reference, given_names=given_names.strip()[:200],
                          family_name=family_name.strip()[:200], date_of_birth=date_of_birth, reason=reason.strip(),
                          to_authority_id=authority_id, **_asker(user), requested_at=now(),
                          episode_id=episode.id if episode is not None else None, status="requested")
    session.add(row)
    session.flush()
    # The asker's row names no episode: their authority's audit pages must not show whether it matched.
    audit.record(session, "transfer_requested", **acted_by(user), request_id=row.id, reference=reference,
                 reason=row.reason)
    if episode is not None:
        asker = {"requested_by_client": user.name} if isinstance(user, ApiClient) else {"requested_by_id": user.id}
        audit.record(session, "transfer_request_received", episode_id=episode.id, request_id=row.id,
                     **asker, to_authority=row.to_authority.code, reason=row.reason)
    return row


def _waiting_request(session: Session, authority_id: int, reference: str, given_names: str, family_name: str,
                     date_of_birth: date) -> TransferRequest | None:
    return session.scalars(select(TransferRequest).where(
        TransferRequest.to_authority_id == authority_id, TransferRequest.status == "requested",
        TransferRequest.reference == reference, func.lower(TransferRequest.given_names) == given_names.lower(),
        func.lower(TransferRequest.family_name) == family_name.lower(),
        TransferRequest.date_of_birth == date_of_birth).limit(1)).first()


def _matching_episode(session: Session, reference: str, given_names: str, family_name: str,
                      date_of_birth: date) -> Episode | None:
    """The open episode with this reference, whose child has these names and date of birth."""
    code, number = _REFERENCE.match(reference).groups()
    if int(number) > _LARGEST_ID:
        return None  # no episode has that id, and PostgreSQL's integer could not even compare it
    return session.scalar(
        select(Episode).join(Authority, Authority.id == Episode.authority_id).join(Child, Child.id == Episode.child_id)
        .where(Episode.id == int(number), Authority.code == code, Episode.status.in_(("open", "error", "suspended")),
               func.lower(Child.given_names) == given_names.lower(),
               func.lower(Child.family_name) == family_name.lower(), Child.date_of_birth == date_of_birth))


def release_problem(session: Session, episode: Episode) -> str | None:
    """Why the episode cannot be released now (the import would refuse it), or None."""
    try:
        check_source_open(episode)
        check_nothing_pending(session, episode)
    except TransferRefused as refusal:
        return refusal.message
    live = session.scalar(select(TransferRequest).where(
        TransferRequest.episode_id == episode.id, TransferRequest.status == "released",
        TransferRequest.expires_at > now()).limit(1))
    if live is not None:
        return (f"Episode {episode.reference} is already released to {live.to_authority.name} until "
                f"{live.expires_at:%d %B %Y}: one release at a time")
    return None


def decide(session: Session, user: User | ApiClient, request: TransferRequest, decision: str, reason: str) -> TransferRequest:
    """Release or decline. The caller has checked `policy.may_decide_transfer` for the request's episode."""
    reason = (reason or "").strip()
    if request.status != "requested":
        # Checked before the release rules: a released request would otherwise read "already released".
        raise AlreadyDecided({"decision": "Someone else has decided this request already"})
    errors = {}
    if decision not in ("release", "decline"):
        errors["decision"] = "Choose whether to release the episode or decline the request"
    if not reason:
        errors["decision_reason"] = "Enter the reason for your decision"
    elif len(reason) > REASON_LIMIT:
        errors["decision_reason"] = f"The reason must be {REASON_LIMIT} characters or fewer"
    if not errors and decision == "release":
        problem = release_problem(session, request.episode)
        if problem:
            raise NotReleasable({"decision": problem})
    if errors:
        raise RequestProblems(errors)
    moment = now()
    values = {"status": "released" if decision == "release" else "declined", "decided_by_id": user_id_of(user),
              "decided_by_client_id": user.id if isinstance(user, ApiClient) else None, "decided_at": moment, "decision_reason": reason}
    if decision == "release":
        values |= {"release_id": secrets.token_hex(16), "expires_at": moment + timedelta(days=RELEASE_DAYS)}
    # Only a request still waiting changes: two people deciding at once cannot both win.
    changed = session.execute(update(TransferRequest).where(
        TransferRequest.id == request.id, TransferRequest.status == "requested").values(**values)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise AlreadyDecided({"decision": "Someone else has decided this request already"})
    session.refresh(request)
    audit.record(session, "transfer_released" if decision == "release" else "transfer_declined", **acted_by(user),
                 episode_id=request.episode_id, request_id=request.id, to_authority=request.to_authority.code,
                 reason=reason, release_id=request.release_id,
                 expires_at=request.expires_at.isoformat() if request.expires_at else None)
    return request


def incoming(session: Session, user: User | ApiClient) -> list[TransferRequest]:
    """Requests for episodes `user` may release or decline, newest first."""
    return session.scalars(select(TransferRequest).join(Episode, Episode.id == TransferRequest.episode_id)
                           .where(policy.incoming_transfer_filter(user))
                           .order_by(TransferRequest.requested_at.desc(), TransferRequest.id.desc())
                           .limit(LIST_LIMIT)).all()


def outgoing(session: Session, user: User | ApiClient) -> list[TransferRequest]:
    """Requests `user`'s authority made, newest first."""
    return session.scalars(select(TransferRequest).where(policy.outgoing_transfer_filter(user))
                           .order_by(TransferRequest.requested_at.desc(), TransferRequest.id.desc())
                           .limit(LIST_LIMIT)).all()
