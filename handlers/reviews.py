"""Reminders when a progress review falls due."""
from __future__ import annotations

from app.engine.context import StepContext

from . import operator


@operator("reviews/reminder")
def reminder(ctx: StepContext) -> dict:
    ref = ctx.episode.reference
    ctx.notify("review_due", ctx.lead_professional().email, f"eCAF {ref}: a review is due",
               f"The progress review for episode {ref} is due. Record it in eCAF once the meeting has taken place.")
    return {"reminded_at": ctx.now.isoformat()}
