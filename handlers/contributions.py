"""Contributions to the assessment: recorded when written, taken in or returned by the lead professional."""
from __future__ import annotations

from app.contributions import assessment_in_progress, latest_assessment, taken_into_draft
from app.engine.context import StepContext
from app.models import Contribution

from . import operator


def _contribution(ctx: StepContext, contribution_id) -> Contribution:
    row = ctx.session.get(Contribution, int(contribution_id))
    if row is None or row.episode_id != ctx.episode.id:
        raise LookupError(f"episode {ctx.episode.reference} has no contribution {contribution_id}")
    return row


@operator("contributions/submit")
def submit(ctx: StepContext, contribution: int, submission: int) -> dict:
    row, form = _contribution(ctx, contribution), ctx.submission(submission)
    row.content = {k: v for k, v in form.submitted_data.items() if k in row.sections or k == "comment"}
    row.status, row.submitted_at = "submitted", ctx.now
    lead = ctx.lead_professional()
    ctx.notify("contribution_submitted", lead.email, f"eCAF {ctx.episode.reference}: a contribution to review",
               f"{row.contributor.full_name} has written their contribution to the assessment. "
               "Sign in to eCAF to take it in or return it.")
    ctx.audit("contribution_submitted", contribution=row.id, sections=row.sections)
    return {}


@operator("contributions/accept")
def accept(ctx: StepContext, contribution: int, submission: int) -> dict:
    row = _contribution(ctx, contribution)
    written = {k: v for k, v in ctx.submission(submission).submitted_data.items() if k in row.sections}
    in_progress = assessment_in_progress(ctx.session, ctx.episode.id)
    if in_progress is not None:
        # The assessment is still being written: the sections go into its draft.
        in_progress.draft = taken_into_draft(in_progress.draft, ctx.episode, written)
        where = "draft"
    else:
        stored = latest_assessment(ctx.session, ctx.episode.id)
        artefact = ctx.add_artefact("assessment", {**(stored.data if stored else {}), **written},
                                    created_by_id=row.contributor_id)
        where = f"version {artefact.version}"
    row.status, row.decided_at = "accepted", ctx.now
    ctx.notify("contribution_accepted", row.contributor.email,
               f"eCAF {ctx.episode.reference}: your contribution is in the assessment",
               "The lead professional has taken your contribution into the assessment.")
    ctx.audit("contribution_accepted", contribution=row.id, sections=row.sections, into=where)
    return {"into": where}


@operator("contributions/return")
def return_to_contributor(ctx: StepContext, contribution: int, submission: int) -> dict:
    row, form = _contribution(ctx, contribution), ctx.submission(submission)
    row.status, row.note = "returned", form.submitted_data.get("note")
    ctx.notify("contribution_returned", row.contributor.email,
               f"eCAF {ctx.episode.reference}: your contribution was returned",
               "The lead professional has returned your contribution with a note. Sign in to eCAF to read it.")
    ctx.audit("contribution_returned", contribution=row.id)
    return {}
