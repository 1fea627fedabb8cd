"""The duty to share: asking for approval, granting read-only access, rejecting, and the expiry."""
from __future__ import annotations

from app import policy
from app.clock import as_utc
from app.uk_time import date_time
from app.engine.context import StepContext
from app.models import ShareDecision

from . import operator


def _decision(ctx: StepContext, decision_id) -> ShareDecision:
    row = ctx.session.get(ShareDecision, int(decision_id))
    if row is None or row.episode_id != ctx.episode.id:
        raise LookupError(f"episode {ctx.episode.reference} has no decision to share {decision_id}")
    return row


@operator("share/ask")
def ask(ctx: StepContext, decision: int) -> dict:
    row, ref = _decision(ctx, decision), ctx.episode.reference
    for email in sorted(user.email for user in policy.approvers(ctx.session, row)):
        ctx.notify("share_approval_needed", email, f"eCAF {ref}: a decision to share information needs approval",
                   f"A decision to share information from episode {ref} without the family's consent is "
                   "waiting for an administrator's approval. Sign in to eCAF to approve or reject it.")
    ctx.audit("share_requested", decision=row.id, recipient=row.recipient_name, records=row.records)
    return {}


def _tell_family(ctx: StepContext, row: ShareDecision) -> None:
    # Like every message, it names the episode by its reference only: no record's content leaves here.
    ref, until = ctx.episode.reference, date_time(as_utc(row.expires_at))
    body = (f"We have shared information from your child's Common Assessment (reference {ref}) with "
            f"{row.recipient_name} without your consent, because the law requires us to share information "
            f"needed to keep a child safe.\nThey can read it until {until}. "
            "You can ask the lead professional or the local authority about this decision.")
    if row.family_email:
        ctx.notify("share_family_notice", row.family_email, "Information about your child has been shared", body)
        ctx.audit("share_family_told", decision=row.id, by="email")
    else:  # no address for email: a letter for the practitioner who asked to send
        ctx.notify("share_family_letter", row.asked_by.email, f"eCAF {ref}: a letter to send to the family",
                   "Please send this letter to the child's family:\n\n" + body)
        ctx.audit("share_family_told", decision=row.id, by="letter")


@operator("share/grant")
def grant(ctx: StepContext, decision: int) -> dict:
    row, ref = _decision(ctx, decision), ctx.episode.reference
    row.status = "granted"
    if row.tell_family:
        _tell_family(ctx, row)
    else:
        ctx.audit("share_family_not_told", decision=row.id, reason=row.not_telling_reason)
    if row.recipient_user is not None:
        ctx.notify("share_granted", row.recipient_user.email, f"eCAF {ref}: information has been shared with you",
                   f"Records of episode {ref} have been shared with you under the duty to share. Sign in to eCAF "
                   "and open 'Information shared with you' to read them before they expire.")
    ctx.notify("share_approved", row.asked_by.email, f"eCAF {ref}: your decision to share was approved",
               f"An administrator approved your decision to share information from episode {ref}.")
    ctx.audit("share_granted", decision=row.id, recipient=row.recipient_name, records=row.records,
              expires_at=as_utc(row.expires_at).isoformat())
    return {"expires_at": as_utc(row.expires_at).isoformat()}


@operator("share/reject")
def reject(ctx: StepContext, decision: int) -> dict:
    row, ref = _decision(ctx, decision), ctx.episode.reference
    row.status = "rejected"
    ctx.notify("share_rejected", row.asked_by.email, f"eCAF {ref}: your decision to share was rejected",
               f"An administrator rejected your decision to share information from episode {ref}. Sign in to "
               "eCAF to read their reasons.")
    ctx.audit("share_rejected", decision=row.id, reason=row.decision_note)
    return {}


@operator("share/expire")
def expire(ctx: StepContext, decision: int) -> dict:
    row = _decision(ctx, decision)
    if row.status == "granted":
        row.status = "expired"
    ctx.audit("share_expired", decision=row.id, recipient=row.recipient_name)
    return {}
