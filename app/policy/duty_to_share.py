"""The duty to share (Children's Wellbeing and Schools Act 2026 s.16LA): access of its own kind.

- The lead professional (the originator before one is appointed) or an administrator of the
  episode's authority records a decision to share or not to share: whoever may manage the episode.
- Another administrator of that authority, never the person who asked, approves or rejects it.
- An approved share gives its recipient (one eCAF user, or the practitioners of one organisation)
  read-only access to exactly the records it names, until it expires. They are not made members:
  the episode, its people, its other records and every action stay closed to them.
"""
from __future__ import annotations

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from app import membership
from app.clock import as_utc, now
from app.models import Episode, Organisation, ShareDecision, User

from .accounts import is_usable
from .episodes import is_administrator_of, permissions


def may_record_share_decision(session: Session, user: User | None, episode: Episode) -> bool:
    """May `user` record a decision to share this episode's records (or not to)?"""
    return episode.status != "deleted" and "manage_members" in permissions(session, user, episode)


def approval_refusal(user: User | None, decision: ShareDecision) -> str | None:
    """Why `user` may not approve or reject `decision` (None: they may)."""
    if not is_administrator_of(user, decision.episode.authority_id):
        return f"Only an administrator of {decision.episode.authority.name} can approve a decision to share"
    if user.id == decision.asked_by_id:
        return "You recorded this decision to share: another administrator must approve or reject it"
    if decision.status == "not_shared":
        return "This records a decision not to share: there is nothing to approve"
    if decision.status != "awaiting_approval":
        return "This decision to share has already been approved or rejected"
    return None


def approvers(session: Session, decision: ShareDecision) -> list[User]:
    """Who may approve or reject `decision`: the usable administrators of its episode's authority
    but the one who recorded it."""
    candidates = session.scalars(select(User).join(Organisation, User.organisation_id == Organisation.id).where(
        Organisation.authority_id == decision.episode.authority_id, User.role == "administrator",
        User.active, User.id != decision.asked_by_id).order_by(User.id)).all()
    return [user for user in candidates if is_usable(user)]


def recipient_refusal(session: Session, episode: Episode, user: User | None) -> str | None:
    """Why records of `episode` may not be shared with the eCAF user `user` (None: they may)."""
    if user is None or user.role != "practitioner" or not is_usable(user):
        # One answer for no account, another kind of account and one that cannot sign in: the form does
        # not tell anyone which emails are accounts, or of what kind.
        return "Enter the work email address of a practitioner who uses eCAF"
    if user.id in (episode.lead_professional_id, episode.originator_id) \
            or membership.membership_of(session, episode, user.id) is not None:
        return f"{user.full_name} is already involved in this CAF: they do not need information shared with them"
    return None


def is_recipient(user: User | None, decision: ShareDecision) -> bool:
    """Is `user` who the decision shares with (the user named, or a practitioner of the organisation named)?"""
    if not is_usable(user) or user.role != "practitioner":
        return False
    if decision.recipient_user_id is not None:
        return decision.recipient_user_id == user.id
    return decision.recipient_organisation_id is not None and user.organisation_id == decision.recipient_organisation_id


def is_live(decision: ShareDecision) -> bool:
    """Approved and not yet expired: by the clock, whether or not the expiry step has run yet."""
    return (decision.status == "granted" and decision.expires_at is not None and as_utc(decision.expires_at) > now()
            and decision.episode.status != "deleted")


def shared_access_refusal(user: User | None, decision: ShareDecision | None) -> str | None:
    """Why `user` may not read what `decision` shares (None: they may). Anyone but a recipient is told
    nothing exists; a recipient is told when the share ended or was never approved."""
    if decision is None or not is_recipient(user, decision):
        return "not_found"
    if is_live(decision):
        return None
    return "expired" if decision.status in ("granted", "expired") else "not_granted"


def may_read_shared_record(user: User | None, decision: ShareDecision, record_key: str) -> bool:
    """The one read a share gives: a record it names, to its recipient, while it lasts."""
    return shared_access_refusal(user, decision) is None and record_key in (decision.records or [])


def shared_with_filter(user: User | None):
    """SQL over ShareDecision: the decisions that share something with `user` (live or not)."""
    if not is_usable(user) or user.role != "practitioner":
        return false()
    by_organisation = (ShareDecision.recipient_organisation_id == user.organisation_id
                       if user.organisation_id else false())
    return or_(ShareDecision.recipient_user_id == user.id, by_organisation)


__all__ = ["approval_refusal", "approvers", "is_live", "is_recipient", "may_read_shared_record", "may_record_share_decision",
           "recipient_refusal", "shared_access_refusal", "shared_with_filter"]
