"""Headline outcomes at closure and the six-month check (the statements themselves are kept by
artefacts/store with the form that made them)."""
from __future__ import annotations

from app import outcomes, policy
from app.engine.context import StepContext

from . import operator


@operator("outcomes/closure_result")
def closure_result(ctx: StepContext) -> dict:
    """Which outcomes the final summary says were met, and when the episode closed: the process
    waits six months from then to ask whether they were sustained."""
    met = outcomes.met_at_closure(ctx.session, ctx.episode.id)
    closed_at = ctx.episode.closed_at or ctx.now
    return {"met": met, "any_met": bool(met), "closed_at": closed_at.isoformat()}


@operator("outcomes/lead_professional_present")
def lead_professional_present(ctx: StepContext) -> dict:
    """Whether the lead professional can still answer the six-month check; tells whoever will."""
    present = policy.lead_can_follow_up(ctx.session, ctx.episode)
    ref = ctx.episode.reference
    recipient = ctx.episode.lead_professional.email if present else ctx.administrator_email()
    ctx.notify("outcome_check_due", recipient, f"eCAF {ref}: six-month outcome check",
               f"Episode {ref} closed six months ago with outcomes met. Sign in to eCAF to say whether they "
               f"have been sustained." + ("" if present else " Its lead professional has left, so an "
                                                            "administrator of the authority answers."))
    ctx.audit("outcome_check_due", answered_by="lead_professional" if present else "administrator")
    return {"present": present}
