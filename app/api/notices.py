"""PUT, GET and DELETE /api/v1/index/notices/{reference}: a client system tells the national index that it
holds an assessment of a child (an Early Help Assessment in a council's case system, say), so that *Is
there a CAF?* names it and whom to contact. The reference is the client's own id for its assessment."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Literal

from flask import request

from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from app import audit
from app import nhs_number as numbers
from app.api.clients import caller, requires
from app.api.text import control_problems
from app.api.problems import Problem
from app.api.schemas import PROBLEMS, ProblemDetails
from app.api.spec import SECURITY, json_body, spec
from app.clock import now
from app.models import ApiClient
from app.services import received_notices
from app.services.children import normalise_postcode, valid_postcode
from app.services.national_index import CONTACT_FIELDS
from app.services.received_notices import NoticeFields, NoticeNotFound
from app.web import request_db

PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,29}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
OLDEST = 25  # years: children's services work with young people up to 25
PATH = "/index/notices/<reference>"
REFERENCE_DOC = {"reference": "Your own id for the assessment: 1 to 64 letters, digits, dots, dashes, colons or "
                              "underscores, starting with a letter or digit"}
NOT_FOUND = {"HTTP_404": ProblemDetails}


class NoticeContact(BaseModel):
    """Whom a practitioner who finds the notice should ask: a name, an organisation, a phone or an email."""
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., max_length=200)
    role: str | None = Field(None, max_length=200)
    organisation: str = Field(..., max_length=200)
    phone: str | None = Field(None, max_length=30)
    email: str | None = Field(None, max_length=254)


class NoticeBody(BaseModel):
    """An assessment the client's system holds, with the child's keys as the index matches them."""
    model_config = ConfigDict(extra="forbid")
    assessment: str = Field(..., max_length=100, examples=["Early Help Assessment"])
    status: Literal["open", "closed"]
    nhs_number: str | None = Field(None, max_length=20, examples=["943 476 5919"])
    family_name: str = Field(..., max_length=200)
    given_names: str | None = Field(None, max_length=200)
    date_of_birth: date
    postcode: str | None = Field(None, max_length=10)
    contact: NoticeContact


class NoticeAnswer(BaseModel):
    """The notice as the index holds it (this client's own only)."""
    reference: str
    assessment: str
    status: str = Field(..., description="open or closed")
    nhs_number: str | None
    family_name: str
    given_names: str | None
    date_of_birth: date
    postcode: str | None
    contact: NoticeContact
    received_at: datetime
    updated_at: datetime


def _text_problems(body: NoticeBody) -> dict[str, str]:
    sent = body.model_dump()
    errors = control_problems([*sent.items(), *((f"contact.{k}", v) for k, v in sent["contact"].items())])
    for field, label in (("assessment", "the kind of assessment"), ("family_name", "the family name"),
                         ("contact.name", "the contact's name"), ("contact.organisation", "the organisation")):
        value = sent["contact"][field[8:]] if field.startswith("contact.") else sent[field]
        if not value.strip():
            errors.setdefault(field, f"Enter {label}")
    return errors


def _checked(reference: str, body: NoticeBody) -> NoticeFields:
    """The notice as the service takes it, or 400 naming each field that is wrong."""
    errors = {} if received_notices.valid_reference(reference) else {"reference": received_notices.REFERENCE_RULE}
    errors.update(_text_problems(body))
    today = now().date()
    if body.date_of_birth >= today:
        errors["date_of_birth"] = "The date of birth must be in the past"
    elif body.date_of_birth < today - timedelta(days=366 * OLDEST):
        errors["date_of_birth"] = f"The date of birth must be within the last {OLDEST} years"
    postcode = normalise_postcode(body.postcode) if "postcode" not in errors else None
    if "postcode" not in errors and not valid_postcode(postcode):
        errors["postcode"] = "Enter a real postcode, like W9 2AB"
    number = (body.nhs_number or "").strip() or None
    if number and "nhs_number" not in errors and (problem := numbers.problem(number)):
        errors["nhs_number"] = problem
    contact = {key: (getattr(body.contact, key) or "").strip() or None for key in CONTACT_FIELDS}
    if not contact["phone"] and not contact["email"]:
        errors.setdefault("contact.phone", "Enter a telephone number or an email address")
    if contact["phone"] and not PHONE.fullmatch(contact["phone"]):
        errors.setdefault("contact.phone", "Enter a telephone number, like 01632 960 001")
    if contact["email"] and not EMAIL.fullmatch(contact["email"]):
        errors.setdefault("contact.email", "Enter an email address, like name@example.org")
    if errors:
        raise Problem(400, "Some fields are missing or invalid.", errors=errors)
    return NoticeFields(assessment=body.assessment.strip(), status=body.status, family_name=body.family_name.strip(),
                        given_names=(body.given_names or "").strip() or None, date_of_birth=body.date_of_birth,
                        postcode=postcode, nhs_number=numbers.digits(number) if number else None, contact=contact)


def _reference_checked(reference: str) -> None:
    if not received_notices.valid_reference(reference):
        raise Problem(400, "The reference is not valid.", errors={"reference": received_notices.REFERENCE_RULE})


def _shown(notice) -> dict:
    return NoticeAnswer(reference=notice.reference, assessment=notice.assessment, status=notice.status,
                        nhs_number=notice.nhs_number, family_name=notice.family_name,
                        given_names=notice.given_names, date_of_birth=notice.date_of_birth,
                        postcode=notice.postcode, contact=NoticeContact(**notice.contact),
                        received_at=notice.received_at, updated_at=notice.updated_at).model_dump(mode="json")


def _not_found(reference: str) -> Problem:
    return Problem(404, f"This client has no notice with the reference {reference}.")


def refusals_audited(view):
    """A notice refused as bad input (400, 415) is audited with the client's name and the fields named,
    never their values; a reference not found is audited by the service, with what it knows."""
    @wraps(view)
    def audited(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Problem as problem:
            if problem.code in (400, 415):
                reference, who = kwargs.get("reference", ""), caller()
                with request_db.transaction() as session:
                    audit.record(session, "index_notice_refused", asked=ASKED.get(request.method, request.method),
                                 why="invalid", status=problem.code, fields=sorted(problem.errors or {}),
                                 client=who.name, client_ref=who.client_id,
                                 reference=reference if received_notices.valid_reference(reference) else None)
            raise
    return audited


ASKED = {"PUT": "send", "GET": "read", "DELETE": "withdraw"}


def install(bp) -> None:
    @bp.put(PATH)
    @requires(received_notices.SCOPE)
    @refusals_audited
    @json_body
    @spec.validate(json=NoticeBody, resp=Response(HTTP_200=NoticeAnswer, HTTP_201=NoticeAnswer, **PROBLEMS,
                                                  **NOT_FOUND),
                   tags=["index notices"], security=SECURITY, operation_id="putIndexNotice",
                   path_parameter_descriptions=REFERENCE_DOC)
    def put_index_notice(reference: str, json: NoticeBody):
        """Tell the index that your system holds this assessment (created: 201), or replace what you sent (200)."""
        fields = _checked(reference, json)
        with request_db.transaction() as session:
            client = session.get(ApiClient, caller().id)
            notice, created = received_notices.put(session, client, reference, fields)
            answer = _shown(notice)
        return answer, 201 if created else 200

    @bp.get(PATH)
    @requires(received_notices.SCOPE)
    @refusals_audited
    @spec.validate(resp=Response(HTTP_200=NoticeAnswer, **PROBLEMS, **NOT_FOUND), tags=["index notices"],
                   security=SECURITY, operation_id="getIndexNotice", path_parameter_descriptions=REFERENCE_DOC)
    def get_index_notice(reference: str):
        """Your notice as the index holds it; 404 once withdrawn, or for a reference you never sent."""
        _reference_checked(reference)
        answer = None
        with request_db.transaction() as session:  # a refusal is audited, so it commits too
            try:
                answer = _shown(received_notices.get(session, session.get(ApiClient, caller().id), reference))
            except NoticeNotFound:
                pass
        if answer is None:
            raise _not_found(reference)
        return answer

    @bp.delete(PATH)
    @requires(received_notices.SCOPE)
    @refusals_audited
    @spec.validate(resp=Response("HTTP_204", **PROBLEMS, **NOT_FOUND), tags=["index notices"], security=SECURITY,
                   operation_id="withdrawIndexNotice", path_parameter_descriptions=REFERENCE_DOC)
    def withdraw_index_notice(reference: str):
        """Withdraw your notice: searches no longer show it. Withdrawing again also answers 204."""
        _reference_checked(reference)
        found = False
        with request_db.transaction() as session:
            try:
                received_notices.withdraw(session, session.get(ApiClient, caller().id), reference)
                found = True
            except NoticeNotFound:
                pass
        if not found:
            raise _not_found(reference)
        return "", 204
