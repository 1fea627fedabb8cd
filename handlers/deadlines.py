"""The CAF deadlines: 35 days to submit (then 24 hours' notice of deletion) and 48 hours in a
child-protection case."""
from __future__ import annotations

from sqlalchemy import Integer, String, bindparam, exists, insert, select

from app.engine.context import StepContext
from app.models import AdminAlert
from app.models.base import UTCDateTime

from . import operator


# One statement, the look and the write together (the step holds the episode's lock), built once.
_ALERTS = AdminAlert.__table__  # the table, not the entity: the ORM would take the parameters for rows to insert
_RAISE_ALERT = insert(_ALERTS).from_select(
    ["episode_id", "authority_id", "kind", "message", "raised_at"],
    select(bindparam("episode_id", type_=Integer), bindparam("authority_id", type_=Integer),
           bindparam("kind", type_=String), bindparam("message", type_=String),
           bindparam("raised_at", type_=UTCDateTime())).where(~exists().where(
               _ALERTS.c.episode_id == bindparam("episode_id"), _ALERTS.c.kind == bindparam("kind"),
               _ALERTS.c.resolved_at.is_(None))))


def raise_alert(ctx: StepContext, kind: str, message: str) -> bool:
    """An alert in the administrators' task list, written in the step's transaction. One open
    alert per episode and kind: a step retried after a failure adds no second one. Whether it was written."""
    episode = ctx.episode
    written = ctx.session.execute(_RAISE_ALERT, {"episode_id": episode.id, "authority_id": episode.authority_id,
                                                 "kind": kind, "message": message, "raised_at": ctx.now})
    return written.rowcount == 1


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
    raise_alert(ctx, "assessment_overdue",
                "The assessment was not submitted within the time limit. The originator has been warned that "
                "the CAF will be deleted unless it is submitted or placed under a legal hold.")
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
    raise_alert(ctx, "child_protection_overdue",
                "A child-protection concern was recorded and the assessment was not submitted within 48 hours. "
                "The lead professional has been alerted.")
    ctx.audit("deadline_missed", deadline="child_protection")
    return {"escalated_at": ctx.now.isoformat()}
