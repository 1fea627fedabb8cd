"""The episode itself: existing CAFs, child-protection concerns, lead professional, closure, deletion."""
from __future__ import annotations

from sqlalchemy import and_, delete, func, select

from app import attachments, audit, membership, nhs_number, policy
from app.clock import now
from app.engine.context import StepContext
from app.models import (Artefact, Child, Consent, ConsentExclusion, Episode, HumanTask, IndexEntry, OutcomeRecord,
                        ShareDecision, User)
from app.services import family_changes

from . import index, operator


@operator("episodes/record_child_protection_concern")
def record_child_protection_concern(ctx: StepContext) -> dict:
    ctx.episode.child_protection = True
    ctx.audit("child_protection_concern_recorded")
    return {"recorded_at": ctx.now.isoformat()}


@operator("episodes/check_existing")
def check_existing(ctx: StepContext) -> dict:
    """Is there an open CAF for this child under another record or in another authority? An entry holding
    the child's NHS number is this child's first; one holding another number is another child's."""
    child = ctx.episode.child
    others = select(IndexEntry).where(IndexEntry.status == "open", IndexEntry.episode_id != ctx.episode.id) \
        .order_by(IndexEntry.updated_at.desc()).limit(1)
    same_details = and_(func.lower(IndexEntry.family_name) == child.family_name.lower(),
                        IndexEntry.date_of_birth == child.date_of_birth)
    entry = None
    if child.nhs_number:
        entry = ctx.session.scalar(others.where(IndexEntry.nhs_number == child.nhs_number))
        same_details = and_(same_details, nhs_number.not_another(IndexEntry.nhs_number, child.nhs_number))
    entry = entry or ctx.session.scalar(others.where(same_details))
    if entry is None:
        return {"found": False}
    ref = ctx.episode.reference
    contact = entry.contact
    ctx.notify("existing_caf", ctx.episode.originator.email, f"eCAF {ref}: a CAF already exists",
               "An open CAF already exists for this child. Contact its lead professional: "
               f"{contact.get('name')}, {contact.get('organisation') or ''}, {contact.get('phone') or ''}, "
               f"{contact.get('email') or ''}.")
    return {"found": True, "contact": contact}


@operator("episodes/appoint_lead_professional")
def appoint_lead_professional(ctx: StepContext, submission: int, email: str | None = None) -> dict:
    """The lead professional named on the form; `email` (task data) is what an administrator corrects
    when the person named cannot take the role."""
    form = ctx.submission(submission)
    email = email or form.submitted_data["lead_professional_email"]
    user = ctx.session.scalar(select(User).where(func.lower(User.email) == email.lower(), User.active))
    if user is None:
        raise LookupError(f"no active eCAF user has the email address {email}")
    problem = _cannot_lead(ctx, user)
    if problem:
        raise PermissionError(f"{user.full_name} cannot be the lead professional: {problem}")
    membership.appoint_lead(ctx.session, ctx.episode, user, by_id=form.completed_by_id or ctx.actor_id)
    ctx.session.flush()
    ctx.session.refresh(ctx.episode, ["lead_professional"])
    ctx.add_artefact("contact", {**user.contact(), "role_in_episode": "lead professional"}, human_task=form)
    ctx.notify("lead_professional_appointed", user.email, f"eCAF {ctx.episode.reference}: you are the lead professional",
               f"You have been appointed lead professional for episode {ctx.episode.reference}.")
    ctx.audit("lead_professional_appointed", user_id=user.id)
    index.follow_episode(ctx, "lead_professional_changed")
    return {"user_id": user.id}


def _cannot_lead(ctx: StepContext, user: User) -> str | None:
    return policy.lead_refusal(ctx.session, user, ctx.episode, ctx.now.date())


@operator("episodes/close")
def close(ctx: StepContext, reason: str) -> dict:
    episode = ctx.episode
    episode.outcome = reason
    episode.closed_at = ctx.now
    index.follow_episode(ctx, "caf_closed", closed=True)
    if reason == "safeguarding_referral":
        ctx.notify("safeguarding_referral", ctx.administrator_email(),
                   f"eCAF {episode.reference}: referred to safeguarding",
                   f"The practitioner ended episode {episode.reference} with a safeguarding referral.")
    ctx.audit("episode_closed", reason=reason)
    return {"closed": True, "reason": reason}


@operator("episodes/delete")
def delete_episode(ctx: StepContext, reason: str) -> dict:
    episode = ctx.episode
    if episode.legal_hold:
        ctx.notify("deletion_held", ctx.administrator_email(), f"eCAF {episode.reference}: deletion blocked",
                   f"Episode {episode.reference} was due for deletion ({reason}) but is under a legal hold.")
        ctx.audit("deletion_refused", reason=reason, why="legal hold")
        return {"deleted": False, "reason": "legal hold"}
    purge_episode(ctx, reason)
    return {"deleted": True}


def purge_episode(ctx: StepContext, reason: str) -> None:
    """Remove the episode's content and the child's personal data for good, leaving a stub
    (id, who, when, why) in the episode row and the audit trail. Refuses under a legal hold."""
    episode = ctx.episode
    if episode.legal_hold:
        raise PermissionError(f"episode {episode.reference} is under a legal hold")
    session = ctx.session
    reference, child_id = episode.reference, episode.child_id
    attachments.delete_for_episode(session, ctx.config, episode.id, actor_id=ctx.actor_id)
    # Decisions to share go too (their reasons name the family); the audit trail keeps that they were made.
    for model in (ConsentExclusion, Consent, OutcomeRecord, Artefact, HumanTask, IndexEntry, ShareDecision):
        session.execute(delete(model).where(model.episode_id == episode.id))
    # Messages not yet sent may name the episode; their text holds no personal data of the child.
    episode.child_id = None
    episode.state, episode.next_timer_at = None, None
    episode.status, episode.outcome, episode.deleted_at = "deleted", "deleted", now()
    session.flush()
    if child_id is not None:
        others = session.scalar(select(func.count()).select_from(Episode).where(Episode.child_id == child_id))
        if not others:
            session.execute(delete(IndexEntry).where(IndexEntry.child_id == child_id))
            family_changes.forget_child(session, child_id)  # their family place; adults left unrelated
            session.execute(delete(Child).where(Child.id == child_id))
    ctx.deleted = True
    for email in {episode.originator.email, ctx.administrator_email()}:
        ctx.notify("episode_deleted", email, f"eCAF {reference}: deleted",
                   f"Episode {reference} has been deleted ({reason}).")
    audit.record(session, "episode_deleted", actor_id=ctx.actor_id, episode_id=episode.id,
                 reference=reference, reason=reason, originator_id=episode.originator_id)

