"""The CAF deadlines: 35 days to submit (then 24 hours' notice of deletion) and 48 hours in a
child-protection case."""
from __future__ import annotations

from app.engine.context import StepContext

from . import operator


@operator("deadlines/overdue_warning")
def overdue_warning(ctx: StepContext) -> dict:
    episode, ref = ctx.episode, ctx.episode.reference
    ctx.notify("overdue_alert", ctx.administrator_email(), f"eCAF {ref}: not submitted within the time limit",
               f"The assessment for episode {ref} was not submitted within the time limit. "
               f"Please contact the originator, {episode.originator.full_name}. "
               "The episode will be deleted in 24 hours unless it is submitted or placed under a legal hold.")
    ctx.notify("deletion_warning", episode.originator.email, f"eCAF {ref}: will be deleted in 24 hours",
               f"The assessment for episode {ref} has not been submitted within the time limit. "
               "Submit it within 24 hours, or it will be deleted.")
    ctx.audit("deadline_missed", deadline="assessment")
    return {"warned_at": ctx.now.isoformat()}


@operator("deadlines/child_protection_escalation")
def child_protection_escalation(ctx: StepContext) -> dict:
    ref = ctx.episode.reference
    text = (f"Episode {ref} records a child-protection concern and its assessment was not submitted "
            "within 48 hours. Please act now.")
    for kind, email in (("escalation_admin", ctx.administrator_email()),
                        ("escalation_lead", ctx.lead_professional().email)):
        ctx.notify(kind, email, f"eCAF {ref}: child-protection assessment overdue", text)
    ctx.audit("deadline_missed", deadline="child_protection")
    return {"escalated_at": ctx.now.isoformat()}
