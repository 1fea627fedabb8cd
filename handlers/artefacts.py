"""Storing what the team records in delivery and closure: meetings, plans, reviews, summaries."""
from __future__ import annotations

from app import outcomes
from app.engine.context import StepContext

from . import operator

STORABLE_KINDS = {"tac_meeting", "action_plan", "review", "final_summary", "outcome_sustained"}


@operator("artefacts/store")
def store(ctx: StepContext, kind: str, submission: int) -> dict:
    if kind not in STORABLE_KINDS:
        raise ValueError(f"cannot store a record of kind {kind!r}; known kinds: {', '.join(sorted(STORABLE_KINDS))}")
    form = ctx.submission(submission)
    artefact = ctx.add_artefact(kind, dict(form.submitted_data), human_task=form)
    if kind == "tac_meeting":
        # Everyone at the meeting joins the episode's list of people involved.
        for person in form.submitted_data.get("attendees", []):
            ctx.add_artefact("contact", {**person, "source": "tac_meeting"}, human_task=form)
    ctx.audit("artefact_stored", kind=kind, version=artefact.version)
    if outcomes.form_kind(f"{kind}.schema.json"):
        # What the form says of the headline outcomes, as rows the reports count.
        stated = outcomes.record(ctx.session, ctx.episode, kind, form)
        ctx.audit("outcomes_recorded", stage=outcomes.FORMS[kind][0], outcomes=stated)
    return {"artefact_id": artefact.id, "version": artefact.version}
