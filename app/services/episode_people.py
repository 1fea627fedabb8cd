"""The people on an episode and the family's consent: add and remove members, withdraw consent.

Only the lead professional (the originator until a lead is appointed) and the authority's
administrators change membership, always with a reason. Nobody from a service the consent
excludes can be added. Contributors exist only where the authority has switched them on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, consent, membership, policy
from app.clock import now
from app.contributions import sections_of
from app.engine.errors import EpisodeNotOpen, NotWaitingForMessage
from app.models import Episode, EpisodeMember, User

ADDABLE_ROLES = {"tac_member": "Team Around the Child member", "contributor": "Contributor (named sections only)"}


@dataclass
class Change:
    """What was typed and what is wrong with it; an empty `errors` means it was done."""

    typed: dict
    errors: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.errors


def add_member(session: Session, episode: Episode, actor: User, form: dict) -> Change:
    typed = {"email": (form.get("email") or "").strip()[:254], "role": form.get("role") or "",
             "reason": (form.get("reason") or "").strip()[:2000], "sections": list(form.get("sections") or [])}
    change = Change(typed)
    errors = change.errors
    user = session.scalar(select(User).where(func.lower(User.email) == typed["email"].lower())) \
        if typed["email"] else None
    if not episode.is_open:
        # A closed CAF's page offers no way to add anyone: a forged request is refused and recorded.
        errors["email"] = f"Nobody can be added to {episode.reference}: the CAF is {episode.status}"
        audit.record(session, "access_denied", actor_id=actor.id, episode_id=episode.id,
                     asked_for="add a person to a CAF that is not open")
    elif not typed["email"]:
        errors["email"] = "Enter the work email address of the person to add"
    elif (refusal := policy.join_refusal(session, user, episode)) == "not_a_practitioner":
        errors["email"] = "There is no practitioner with this email address in eCAF"
    elif refusal == "not_usable":
        errors["email"] = f"{user.full_name} cannot be added: their vetting check or training is not current"
    elif refusal == "excluded":
        errors["email"] = (f"{user.full_name} cannot be added: the family's consent excludes "
                           f"{user.organisation.name}")
    elif membership.membership_of(session, episode, user.id) is not None:
        errors["email"] = f"{user.full_name} is already working on this episode"
    if typed["role"] not in ADDABLE_ROLES:
        errors["role"] = "Select the part this person will play"
    elif typed["role"] == "contributor":
        if not episode.authority.contributors_enabled:
            errors["role"] = "Contributors are not switched on in this authority"
        elif not typed["sections"] or not set(typed["sections"]) <= set(sections_of(episode)):
            errors["sections"] = "Select the sections of the assessment this person may contribute to"
    if not typed["reason"]:
        errors["reason"] = "Enter the reason for adding this person"
    if errors:
        return change
    membership.add(session, episode, user, typed["role"], by_id=actor.id, reason=typed["reason"],
                   sections=typed["sections"] if typed["role"] == "contributor" else None)
    return change


def remove_member(session: Session, episode: Episode, actor: User, member_id: int, reason: str) -> Change:
    change = Change({"reason": (reason or "").strip()[:2000]})
    member = session.get(EpisodeMember, member_id)
    if member is None or member.episode_id != episode.id:
        change.errors["member"] = "This person is not a member of the episode"
        return change
    try:
        membership.remove(session, member, by_id=actor.id, reason=change.typed["reason"])
    except membership.MembershipRefused as refused:
        change.errors["reason" if "reason" in str(refused) else "member"] = str(refused)
    return change


def withdraw_consent(runtime, episode_id: int, actor: User, form: dict) -> Change:
    """Stop sharing at once (its own commit), then tell the episode's process, which closes it."""
    typed = {"withdrawn_by": (form.get("withdrawn_by") or "").strip()[:500],
             "reason": (form.get("reason") or "").strip()[:2000], "confirm": form.get("confirm") == "yes"}
    change = Change(typed)
    if not typed["withdrawn_by"]:
        change.errors["withdrawn_by"] = "Enter the name of the person who withdrew consent"
    if not typed["confirm"]:
        change.errors["confirm"] = "Confirm that consent has been withdrawn"
    if change.errors:
        return change
    with runtime.db.session() as session:
        # Asked again here, with the episode locked, in the transaction that stops the sharing.
        episode = session.get(Episode, episode_id, with_for_update=True)
        if episode is None or not policy.may(session, session.get(User, actor.id), "withdraw_consent", episode):
            raise LookupError(f"episode {episode_id}")
        consent.withdraw(session, episode, withdrawn_by_name=typed["withdrawn_by"], reason=typed["reason"] or None,
                         recorded_by_id=actor.id)
    try:
        runtime.engine.send_message(episode_id, "consent_withdrawn",
                                    {"by": typed["withdrawn_by"], "reason": typed["reason"],
                                     "recorded_at": now().isoformat()}, actor.id)
    except (NotWaitingForMessage, EpisodeNotOpen):
        # Not at a stage that listens for it (e.g. already closing): sharing has stopped all the same.
        pass
    return change
