"""The submitted assessment: a new version, signed with the assessor's name and the date."""
from __future__ import annotations

from app.engine.context import StepContext

from . import operator


@operator("assessment/submit")
def submit(ctx: StepContext, submission: int) -> dict:
    form = ctx.submission(submission)
    assessor = form.completed_by or ctx.episode.originator
    signed = {
        **form.submitted_data,
        # The electronic signature: who assessed, and when (L9).
        "signature": {"assessor": assessor.full_name, "role": assessor.job_title,
                      "organisation": assessor.organisation.name if assessor.organisation else None,
                      "submitted_on": ctx.now.date().isoformat()},
    }
    artefact = ctx.add_artefact("assessment", signed, human_task=form)
    ctx.episode.submitted_at = ctx.now
    ctx.audit("assessment_submitted", version=artefact.version)
    return {"artefact_id": artefact.id, "version": artefact.version, "assessor": assessor.full_name}
