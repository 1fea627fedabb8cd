"""POST /api/v1/index/search: is there a CAF for this child, and whom should the client's authority ask?"""
from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field
from spectree import Response

from app import nhs_number as numbers
from app.api.clients import caller, requires
from app.api.problems import Problem
from app.api.schemas import PROBLEMS
from app.api.spec import SECURITY, json_body, spec
from app.api.text import control_problems
from app.clock import now
from app.models import ApiClient
from app.services import client_index_search
from app.services.children import normalise_postcode, valid_postcode
from app.services.national_index import SearchInvalid
from app.web import request_db



class IndexSearch(BaseModel):
    """An NHS number, or family name, date of birth and postcode (any two keys); a reason always."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST",
        "reason": "Checking before a referral to family support"}]})
    # The patterns document the shapes accepted (the checks below give each its own message).
    nhs_number: str | None = Field(None, max_length=20, examples=["943 476 5919"],
                                   json_schema_extra={"pattern": "^[0-9 -]{10,20}$"})
    given_names: str | None = Field(None, max_length=200)
    family_name: str | None = Field(None, max_length=200)
    date_of_birth: date | None = None
    postcode: str | None = Field(None, max_length=10, examples=["TE1 1ST"],
                                 json_schema_extra={"pattern": "^ *[A-Za-z]{1,2}[0-9][A-Za-z0-9]? *[0-9][A-Za-z]{2} *$"})
    reason: str = Field(..., min_length=1, max_length=1000, description="Why the index is asked (audited)")


class Contact(BaseModel):
    name: str | None = None
    role: str | None = None
    organisation: str | None = None
    phone: str | None = None
    email: str | None = None


class Source(BaseModel):
    """Where the result comes from: a CAF held in eCAF, or an assessment another system reported."""
    kind: str = Field(..., description="ecaf: a CAF in eCAF. received_notice: an assessment held in another "
                                       "system, reported to the index; not an eCAF CAF, ask the contact")
    description: str = Field(..., examples=["Early Help Assessment reported by Mosaic for Testshire"])
    assessment: str = Field(..., description="CAF, or the kind the reporting system named")
    system: str | None = Field(None, description="The reporting client system's name")
    authority: str | None = Field(None, description="The reporting client's authority")


class IndexResult(BaseModel):
    """That a CAF exists, its status, its authority and whom to contact: never what it holds."""
    match: str = Field(..., description="exact or near")
    near_because: list[str]
    family_name: str | None = Field(None, description="Left out when found by NHS number alone")
    date_of_birth: date | None = None
    postcode_district: str | None = None
    home_authority: str
    status: str = Field(..., description="open or closed")
    last_updated: datetime
    contact: Contact
    matched_on_nhs_number: bool
    source: Source


class IndexAnswer(BaseModel):
    results: list[IndexResult]


def _checked(body: IndexSearch) -> dict:
    """The search as the service takes it, or 400 naming each field that is wrong (as the web form does)."""
    errors = control_problems(body.model_dump().items())
    if body.date_of_birth is not None and body.date_of_birth >= now().date():
        errors["date_of_birth"] = "The date of birth must be in the past"
    postcode = normalise_postcode(body.postcode)
    if not valid_postcode(postcode):
        errors["postcode"] = "Enter a real postcode, like W9 2AB"
    number = (body.nhs_number or "").strip() or None
    if number and (problem := numbers.problem(number)):
        errors["nhs_number"] = problem
    if errors:
        raise Problem(400, "Some fields are missing or invalid.", errors=errors)
    return {"given_names": body.given_names, "family_name": body.family_name, "date_of_birth": body.date_of_birth,
            "postcode": postcode, "reason": body.reason, "nhs_number": numbers.digits(number) if number else None}


def _shown(result) -> dict:
    return IndexResult(match=result.match, near_because=list(result.near_because),
                       family_name=result.family_name or None, date_of_birth=result.date_of_birth,
                       postcode_district=result.postcode_district, home_authority=result.home_authority,
                       status=result.status, last_updated=result.last_updated, contact=Contact(**result.contact),
                       matched_on_nhs_number=result.by_nhs_number,
                       source=Source(kind=result.source.kind, description=result.source.description,
                                     assessment=result.source.assessment, system=result.source.system,
                                     authority=result.source.authority)).model_dump(mode="json")


def install(bp) -> None:
    @bp.post("/index/search")
    @requires(client_index_search.SCOPE)
    @json_body
    @spec.validate(json=IndexSearch, resp=Response(HTTP_200=IndexAnswer, **PROBLEMS), tags=["index"],
                   security=SECURITY, operation_id="searchIndex")
    def index_search(json: IndexSearch):
        """Is there a CAF? Searches the national index as a practitioner of the client's authority would."""
        typed = _checked(json)
        with request_db.transaction() as session:
            client = session.get(ApiClient, caller().id)
            try:
                results = client_index_search.search(session, client, **typed)
            except SearchInvalid as exc:
                raise Problem(400, "Some fields are missing or invalid.", errors={
                    "keys" if key == "keys" else "reason": message for key, message in exc.problems.items()})
            except client_index_search.ClientSearchRefused:
                raise Problem(403)
            answer = {"results": [_shown(r) for r in results]}
        return answer
