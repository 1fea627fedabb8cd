"""Requests to targeted and specialist services: sending, the team's decision, and the response time."""
from __future__ import annotations

from sqlalchemy import select

from app import membership, policy
from app.engine.context import StepContext
from app.models import AdminAlert, ServiceRequest, User
from app.service_requests import add_working_days

from . import operator


def _request(ctx: StepContext, request_id) -> ServiceRequest:
    request = ctx.session.get(ServiceRequest, int(request_id))
    if request is None or request.episode_id != ctx.episode.id:
        raise LookupError(f"episode {ctx.episode.reference} has no service request {request_id}")
    return request


def _tell_team(ctx: StepContext, request: ServiceRequest, kind: str, subject: str, body: str) -> None:
    recipients = policy.team_recipients(request.service)
    for email in sorted(filter(None, recipients)):
        ctx.notify(kind, email, subject, body)


def _tell_requester(ctx: StepContext, row: ServiceRequest, kind: str, action: str, headline: str, body: str) -> None:
    """The practitioner who asked hears of each answer; the audit trail records it."""
    ctx.notify(kind, row.requested_by.email, f"eCAF {ctx.episode.reference}: {headline}", body)
    ctx.audit(action, request=row.id, service=row.service.name)


def _due(ctx: StepContext, request: ServiceRequest) -> dict:
    request.due_at = add_working_days(ctx.now, request.service.response_working_days)
    return {"due_at": request.due_at.isoformat()}


@operator("services/send")
def send(ctx: StepContext, request: int, submission: int) -> dict:
    row, form = _request(ctx, request), ctx.submission(submission)
    # Asked again in the step that tells the team: nothing reaches a team the consent keeps out.
    if (refused := policy.request_refusal(ctx.session, ctx.episode, row)) is not None:
        raise ValueError(f"request {row.id} was not sent: {refused}")
    row.content = dict(form.submitted_data)
    row.status, row.sent_at, row.question = "sent", ctx.now, None
    ref = ctx.episode.reference
    _tell_team(ctx, row, "service_request", f"eCAF {ref}: a request for {row.service.name}",
               f"A practitioner has asked {row.service.name} for help with episode {ref}. "
               "Sign in to eCAF to read the request and decide on it.")
    ctx.audit("service_request_sent", request=row.id, service=row.service.name)
    return _due(ctx, row)


@operator("services/ask")
def ask(ctx: StepContext, request: int, submission: int) -> dict:
    row, form = _request(ctx, request), ctx.submission(submission)
    row.status, row.question = "more_information", form.submitted_data.get("question")
    _tell_requester(ctx, row, "service_question", "service_request_question",
                    f"{row.service.name} asks for more information",
                    f"{row.service.name} needs more information before deciding on your request. "
                    "Sign in to eCAF to read their question and answer it.")
    return {}


@operator("services/redirect")
def redirect(ctx: StepContext, request: int, submission: int) -> dict:
    row, form = _request(ctx, request), ctx.submission(submission)
    target = policy.redirect_target(ctx.session, row, form.submitted_data.get("redirect_to"))
    if target is None:
        raise ValueError(f"request {row.id} cannot be sent to service {form.submitted_data.get('redirect_to')!r}: "
                         "it is not another active service of this authority that the consent allows")
    previous = row.service
    row.redirected_from, row.service = previous, target
    row.status, row.decision_reason = "sent", form.submitted_data.get("reason")
    ref = ctx.episode.reference
    _tell_team(ctx, row, "service_request_redirected", f"eCAF {ref}: a request for {target.name}",
               f"{previous.name} has passed a request about episode {ref} to {target.name}. "
               "Sign in to eCAF to read the request and decide on it.")
    ctx.notify("service_redirected", row.requested_by.email, f"eCAF {ref}: your request went to {target.name}",
               f"{previous.name} has passed your request to {target.name}. Sign in to eCAF to see their reason.")
    ctx.audit("service_request_redirected", request=row.id, service=previous.name, to=target.name)
    return _due(ctx, row)


def _decided(ctx: StepContext, row: ServiceRequest, form, status: str) -> None:
    row.status, row.decided_at, row.decided_by_id = status, ctx.now, form.completed_by_id
    row.decision_reason = form.submitted_data.get("reason") or form.submitted_data.get("next_steps")


@operator("services/accept")
def accept(ctx: StepContext, request: int, submission: int) -> dict:
    row, form = _request(ctx, request), ctx.submission(submission)
    _decided(ctx, row, form, "accepted")
    # The team's contact joins the people involved with the child.
    contact = ctx.session.get(User, form.completed_by_id) if form.completed_by_id else None
    if contact is not None and membership.membership_of(ctx.session, ctx.episode, contact.id) is None:
        membership.add(ctx.session, ctx.episode, contact, "service_contact", by_id=contact.id,
                       reason=f"{row.service.name} accepted a request")
    ctx.add_artefact("contact", {"name": row.service.contact_name or row.service.name,
                                 "role": f"Contact for {row.service.name}", "organisation": row.service.name,
                                 "email": row.service.contact_email, "phone": row.service.contact_phone,
                                 "source": "service_request"}, human_task=form)
    _tell_requester(ctx, row, "service_accepted", "service_request_accepted",
                    f"{row.service.name} accepted your request",
                    f"{row.service.name} has accepted your request. Their contact is now listed with the people "
                    "involved in the episode.")
    return {}


@operator("services/decline")
def decline(ctx: StepContext, request: int, submission: int) -> dict:
    row, form = _request(ctx, request), ctx.submission(submission)
    _decided(ctx, row, form, "declined")
    _tell_requester(ctx, row, "service_declined", "service_request_declined",
                    f"{row.service.name} declined your request",
                    f"{row.service.name} has declined your request. Sign in to eCAF to read their reason.")
    return {}


@operator("services/response_overdue")
def response_overdue(ctx: StepContext, request: int) -> dict:
    row, ref = _request(ctx, request), ctx.episode.reference
    if row.status == "cancelled":  # e.g. by a consent change: nobody is waiting for the team any more
        return {}
    _tell_team(ctx, row, "service_reminder", f"eCAF {ref}: a request for {row.service.name} is waiting",
               f"A request about episode {ref} has waited longer than {row.service.name}'s response time of "
               f"{row.service.response_working_days} working days. Please decide on it now.")
    ctx.notify("service_overdue_alert", ctx.administrator_email(), f"eCAF {ref}: a service has not responded",
               f"{row.service.name} has not responded to a request about episode {ref} within "
               f"{row.service.response_working_days} working days.")
    message = (f"{row.service.name} has not responded to request {row.id} within its response time of "
               f"{row.service.response_working_days} working days. The team has been reminded.")
    if ctx.session.scalar(select(AdminAlert.id).where(AdminAlert.episode_id == ctx.episode.id,
                                                      AdminAlert.message == message)) is None:
        ctx.session.add(AdminAlert(episode_id=ctx.episode.id, authority_id=ctx.episode.authority_id,
                                   kind="service_response_overdue", message=message, raised_at=ctx.now))
    ctx.audit("deadline_missed", deadline="service_response", request=row.id, service=row.service.name)
    return {"reminded_at": ctx.now.isoformat()}
