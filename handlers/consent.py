"""Consent statements, refusals and withdrawals (CAF.md 3.12 and the binding decisions)."""
from __future__ import annotations

from sqlalchemy import select

from app import consent
from app.engine.context import StepContext
from app.models import HumanTask

from . import index, operator

STATEMENT_FIELDS = (
    "subject", "given_by_name", "relationship", "has_parental_responsibility", "competence_assessed",
    "consent_to_storage", "consent_to_sharing", "permitted_recipients", "excluded_recipients", "notify_index",
    "leaflet_given", "method", "given_on", "young_person_view", "permitted_services", "excluded_services",
)


def _recorder(ctx: StepContext, form: HumanTask) -> dict:
    user = form.completed_by or ctx.actor
    return {"recorded_by": user.full_name if user else None, "recorded_at": ctx.now.isoformat()}


@operator("consent/record_statement")
def record_statement(ctx: StepContext, submission: int) -> dict:
    form = ctx.submission(submission)
    statement = {k: form.submitted_data[k] for k in STATEMENT_FIELDS if k in form.submitted_data}
    artefact = ctx.add_artefact("consent_statement", {**statement, **_recorder(ctx, form)}, human_task=form)
    consent.record_statement(ctx.session, ctx.episode, form.submitted_data,
                             recorded_by_id=form.completed_by_id or ctx.actor_id, artefact_id=artefact.id)
    ctx.audit("consent_recorded", version=artefact.version)
    return {"artefact_id": artefact.id, "version": artefact.version}


@operator("consent/record_refusal")
def record_refusal(ctx: StepContext, submission: int) -> dict:
    """No consent, no assessment: keep the refusal record and nothing of the assessment."""
    form = ctx.submission(submission)
    refusal = {"refusal_reason": form.submitted_data.get("refusal_reason"), **_recorder(ctx, form)}
    artefact = ctx.add_artefact("consent_refusal", refusal, human_task=form)
    for task in ctx.session.scalars(select(HumanTask).where(HumanTask.episode_id == ctx.episode.id,
                                                            HumanTask.id != form.id)):
        task.submitted_data, task.draft = None, None
    form.submitted_data = {"decision": "refused"}
    ctx.episode.outcome = "consent_refused"
    consent.record_refusal(ctx.session, ctx.episode)
    ctx.audit("consent_refused")
    return {"artefact_id": artefact.id}


@operator("consent/record_withdrawal")
def record_withdrawal(ctx: StepContext, withdrawal: dict | None = None) -> dict:
    """Withdrawal stops sharing at once: the index no longer points to this episode."""
    details = dict(withdrawal or {})
    artefact = ctx.add_artefact("consent_withdrawal", {**details, "recorded_at": ctx.now.isoformat()})
    index.follow_episode(ctx, "consent_withdrawn", closed=True)
    ctx.episode.outcome = "consent_withdrawn"
    # The web action has already stopped sharing; a withdrawal reaching the process another way does it here.
    consent.withdraw(ctx.session, ctx.episode, withdrawn_by_name=details.get("by") or "not recorded",
                     reason=details.get("reason"), recorded_by_id=ctx.actor_id)
    ref = ctx.episode.reference
    for email in {ctx.lead_professional().email, ctx.administrator_email()}:
        ctx.notify("consent_withdrawn", email, f"eCAF {ref}: consent withdrawn",
                   f"Consent for episode {ref} has been withdrawn. Sharing has stopped and the episode is closed.")
    ctx.audit("withdrawal_recorded", by=details.get("by"))
    return {"artefact_id": artefact.id}
