"""/api/v1/transfers: a client system asks for an episode, releases or declines, fetches the signed
file and imports it, for its authority, as the pages let that authority's administrator do.

The rules are the services' (app/services/client_transfers.py); this module turns their refusals into
problem details: a request the client may not see is 404 as one that does not exist.
"""
from __future__ import annotations

import json
from datetime import date

from flask import Response as FlaskResponse
from spectree import Response

from app.api.clients import caller, requires
from app.api.text import CONTROL, control_problems
from app.api.problems import Problem, response
from app.api.schemas import PROBLEMS, ProblemDetails
from app.api.spec import SECURITY, json_body, spec
from app.api.transfer_schemas import (ImportedEpisode, ImportRefusal, TransferAsk, TransferDecision, TransferFile,
                                      TransferImport, TransferRequestList, TransferRequestView)
from app.clock import now
from app.config import TransferKeyMissing
from app.policy import TRANSFERS_SCOPE
from app.services import client_transfers
from app.services.transfers import requests as request_rules
from app.services.transfers.common import TransferRefused
from app.web import request_db, runtime

TAGS = ["transfers"]
ONE = "/transfers/requests/<int(min=1, max=2147483647):request_id>"
# Far deeper than an export's workflow state or form data; the checks that follow recurse.
MAX_DEPTH = 100
# The service's field names -> the body's.
_FIELDS = {"decision_reason": "reason"}


def _problems(**more) -> dict:
    return {**PROBLEMS, "HTTP_404": ProblemDetails, **more}


def _no_control(body) -> None:
    errors = control_problems(body.model_dump().items())
    if errors:
        raise Problem(400, "Some fields are missing or invalid.", errors=errors)


def _invalid(problems: request_rules.RequestProblems) -> Problem:
    errors = {_FIELDS.get(field, field): message for field, message in problems.errors.items()}
    if isinstance(problems, request_rules.AlreadyDecided):
        return Problem(409, errors["decision"], errors=errors)
    if isinstance(problems, request_rules.NotReleasable):
        return Problem(422, errors["decision"], errors=errors)
    return Problem(400, "Some fields are missing or invalid.", errors=errors)


def _denied(asked_for: str) -> Problem:
    """Audit the refusal in its own transaction (the view's was rolled back), answered as not found."""
    with request_db.transaction() as session:
        client_transfers.record_denial(session, caller().id, asked_for)
    return Problem(404)


def _view(seen: client_transfers.RequestSeen) -> dict:
    row, deciding = seen.row, seen.deciding
    decided = row.status in ("released", "declined", "used")
    return TransferRequestView(
        id=row.id, side="deciding" if deciding else "asking", status=seen.status, reference=row.reference,
        given_names=row.given_names, family_name=row.family_name, date_of_birth=row.date_of_birth,
        reason=row.reason, asking_authority=row.to_authority.name, requested_at=row.requested_at,
        asked_by=row.asker_name if deciding else None,
        episode_reference=row.episode.reference if deciding else None,
        holding_authority=row.episode.authority.name if deciding or decided else None,
        release_problem=seen.release_problem, decided_by=row.decider_name if deciding else None,
        decided_at=row.decided_at, decision_reason=row.decision_reason, release_id=row.release_id,
        expires_at=row.expires_at).model_dump(mode="json")


def _born(value: date) -> None:
    if value.year < 1900:
        raise Problem(400, "Some fields are missing or invalid.", errors={"date_of_birth": "Enter a real date"})
    if value > now().date():
        raise Problem(400, "Some fields are missing or invalid.",
                      errors={"date_of_birth": "The date of birth must be today or in the past"})


class Refused(Problem):
    """422 for an import that cannot go ahead, listing every detail under `problems`."""

    def __init__(self, refusal: TransferRefused):
        super().__init__(422, refusal.message, errors={refusal.field: refusal.message})
        self.problems = refusal.problems

    def get_response(self, environ=None, scope=None) -> FlaskResponse:
        answer = response(self.code, self.detail, errors=self.errors)
        body = json.loads(answer.get_data())
        if self.problems:
            body["problems"] = self.problems
        answer.set_data(json.dumps(body))
        return answer


def _is_text(value: str) -> bool:
    """False for a lone surrogate (JSON allows "\\ud800"; UTF-8, and so the database, does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _document_problem(document: dict) -> str | None:
    """What no file eCAF gave out can hold: a NUL (PostgreSQL holds none in text) or nesting deeper than
    any export's. Walked without recursion, so no depth a client sends can break the walk itself."""
    waiting = [(document, 1)]
    while waiting:
        value, depth = waiting.pop()
        if depth > MAX_DEPTH:
            return "The document is nested too deeply"
        if isinstance(value, str) and ("\x00" in value or not value.isascii() and not _is_text(value)):
            return "Remove the control characters"
        if isinstance(value, dict):
            waiting.extend((part, depth + 1) for pair in value.items() for part in pair)
        elif isinstance(value, list):
            waiting.extend((part, depth + 1) for part in value)
    return None


def install(bp) -> None:
    @bp.post("/transfers/requests")
    @requires(TRANSFERS_SCOPE)
    @json_body
    @spec.validate(json=TransferAsk, resp=Response(HTTP_201=TransferRequestView, **PROBLEMS), tags=TAGS,
                   security=SECURITY, operation_id="askForTransfer")
    def ask_for_transfer(json: TransferAsk):
        """Ask for another authority's episode. The answer never says whether anything matched."""
        _no_control(json)
        _born(json.date_of_birth)
        with request_db.transaction() as session:
            try:
                seen = client_transfers.ask(session, caller().id, reference=json.reference,
                                            given_names=json.given_names, family_name=json.family_name,
                                            date_of_birth=json.date_of_birth, reason=json.reason)
            except client_transfers.NotVisible:
                raise Problem(403)
            except request_rules.RequestProblems as problems:
                raise _invalid(problems)
            answer = _view(seen)
        return answer, 201

    @bp.get("/transfers/requests")
    @requires(TRANSFERS_SCOPE)
    @spec.validate(resp=Response(HTTP_200=TransferRequestList, **PROBLEMS), tags=TAGS, security=SECURITY,
                   operation_id="listTransferRequests")
    def list_transfer_requests():
        """Requests to decide (for the client's authority's episodes) and requests its authority made."""
        with request_db.transaction() as session:
            try:
                to_decide, made = client_transfers.listed(session, caller().id)
            except client_transfers.NotVisible:
                raise Problem(403)
            answer = {"to_decide": [_view(s) for s in to_decide], "made": [_view(s) for s in made]}
        return answer

    @bp.get(ONE)
    @requires(TRANSFERS_SCOPE)
    @spec.validate(resp=Response(HTTP_200=TransferRequestView, **_problems()), tags=TAGS, security=SECURITY,
                   operation_id="getTransferRequest")
    def get_transfer_request(request_id: int):
        """One request, as its side sees it."""
        try:
            with request_db.transaction() as session:
                answer = _view(client_transfers.one(session, caller().id, request_id))
        except client_transfers.NotVisible as refused:
            raise _denied(str(refused))
        return answer

    @bp.post(ONE + "/decision")
    @requires(TRANSFERS_SCOPE)
    @json_body
    @spec.validate(json=TransferDecision, resp=Response(
        HTTP_200=TransferRequestView, **_problems(HTTP_409=ProblemDetails, HTTP_422=ProblemDetails)),
        tags=TAGS, security=SECURITY, operation_id="decideTransferRequest")
    def decide_transfer_request(request_id: int, json: TransferDecision):
        """Release the episode to the asking authority (for 14 days) or decline, with a reason."""
        _no_control(json)
        try:
            with request_db.transaction() as session:
                try:
                    seen = client_transfers.decide(session, caller().id, request_id, json.decision, json.reason)
                except request_rules.RequestProblems as problems:
                    raise _invalid(problems)
                answer = _view(seen)
        except client_transfers.NotVisible as refused:
            raise _denied(str(refused))
        return answer

    @bp.get(ONE + "/export")
    @requires(TRANSFERS_SCOPE)
    @spec.validate(resp=Response(HTTP_200=TransferFile, **_problems(
        HTTP_409=ProblemDetails, HTTP_410=ProblemDetails, HTTP_503=ProblemDetails)),
        tags=TAGS, security=SECURITY, operation_id="fetchTransferFile")
    def fetch_transfer_file(request_id: int):
        """The signed transfer file while the release is live (every fetch is audited)."""
        try:
            with request_db.transaction() as session:
                try:
                    document, _ = client_transfers.signed_file(session, caller().id, request_id, runtime().config)
                except client_transfers.ReleaseNotLive as closed:
                    raise Problem(410 if closed.gone else 409, closed.message)
                except TransferKeyMissing:
                    raise Problem(503, "This eCAF holds no transfer key: contact the eCAF administrator")
        except client_transfers.NotVisible as refused:
            raise _denied(str(refused))
        return FlaskResponse(json.dumps(document, ensure_ascii=False), mimetype="application/json",
                             headers={"Cache-Control": "no-store"})

    @bp.post("/transfers/import", endpoint="import_transfer")
    @requires(TRANSFERS_SCOPE)
    @json_body
    @spec.validate(json=TransferImport, resp=Response(HTTP_201=ImportedEpisode, HTTP_422=ImportRefusal, **PROBLEMS),
                   tags=TAGS, security=SECURITY, operation_id="importTransfer")
    def import_transfer(json: TransferImport):
        """Import a released episode into the client's authority, with its new lead professional."""
        errors = {"document": _document_problem(json.document),
                  "lead_professional_email": "Remove the control characters"
                  if CONTROL.search(json.lead_professional_email) else None}
        if any(errors.values()):
            raise Problem(400, "Some fields are missing or invalid.",
                          errors={field: message for field, message in errors.items() if message})
        try:
            episode = client_transfers.import_document(runtime(), caller().id, json.document,
                                                       json.lead_professional_email)
        except TransferRefused as refusal:
            raise Refused(refusal)
        return ImportedEpisode(reference=episode.reference, transferred_from=episode.transferred_from,
                               lead_professional_email=json.lead_professional_email.strip()).model_dump(), 201
