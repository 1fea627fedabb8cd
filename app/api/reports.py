"""GET /api/v1/reports/episodes: the client's authority's episodes as data for statutory returns, by page."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from spectree import Response

from app import policy
from app.api import cursors
from app.api.clients import caller, requires
from app.api.problems import Problem
from app.api.schemas import PROBLEMS
from app.api.spec import SECURITY, spec
from app.models import ApiClient
from app.services import episode_returns
from app.services.episode_returns import DEFAULT_PAGE, MAX_PAGE, Filters
from app.web import request_db

CURSOR_PURPOSE = "episode-returns"
WITHHELD = "; ".join(f"`{code}`: {meaning}" for code, meaning in policy.NHS_WITHHELD.items())
NHS_RULE = ("The NHS number is sent only where sharing it is lawful: the family gave consent, the child is not "
            "shielded and a number is held. Otherwise `nhs_number` is null and `nhs_number_withheld` says why: "
            + WITHHELD + ".")
# Only what the document promises (RFC 3339 full-date and date-time): pydantic alone would also take a
# number of seconds, or a datetime for a date, which the document calls invalid.
FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def _written_as(pattern: re.Pattern, example: str):
    def check(value):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"Write it as {example}")
        return value
    return BeforeValidator(check)


Day = Annotated[date, _written_as(FULL_DATE, "2026-04-01")]
Moment = Annotated[datetime, _written_as(DATE_TIME, "2026-04-01T09:00:00Z")]


class EpisodeReturnsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    updated_since: Moment | None = Field(None, description="Only episodes changed at or after this moment "
                                         "(RFC 3339, with its offset: 2026-04-01T09:00:00Z)")
    opened_from: Day | None = Field(None, description="Only episodes opened on or after this day (UK date)")
    opened_to: Day | None = Field(None, description="Only episodes opened on or before this day (UK date)")
    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Episodes per page")
    cursor: str | None = Field(None, max_length=cursors.MAX_LENGTH,
                               description="The next_cursor of the page before, with the same filters")


class ClosureReason(BaseModel):
    code: str | None = Field(None, description="As recorded at closure; null when none was recorded")
    label: str


class OutcomeProgress(BaseModel):
    code: str = Field(..., description="A Supporting Families headline outcome")
    label: str
    progress: str = Field(..., description="The latest statement at a review or closure: not_started, "
                          "some_progress, met or not_met; chosen while none was made")
    progress_label: str
    progress_stage: str | None = Field(None, description="review or closure; null while only chosen")
    progress_recorded_on: date | None = None
    six_month_check: str | None = Field(None, description="sustained or not_sustained, once checked six months "
                                        "after a closure that met it")


class EpisodeReturn(BaseModel):
    id: int
    reference: str = Field(..., examples=["WMN-000123"])
    opened_on: date = Field(..., description="UK date")
    assessment_submitted_on: date | None = None
    closed_on: date | None = None
    updated_at: datetime
    stage: str = Field(..., description="preparation, assessment, delivery, closure or closed")
    status: str = Field(..., description="open, error, suspended or closed")
    closure_reason: ClosureReason | None = Field(None, description="Set once the episode is closed")
    outcomes: list[OutcomeProgress]
    child_age_band: str = Field(..., description="Age when the episode was opened: under_1, 1_to_4, 5_to_9, "
                                "10_to_15, 16_and_over or unknown (the date of birth is not sent)")
    nhs_number: str | None = Field(None, description="Ten digits, where lawful. " + NHS_RULE)
    nhs_number_withheld: str | None = Field(None, description="Why nhs_number is null: "
                                            + ", ".join(policy.NHS_WITHHELD))


class EpisodeReturns(BaseModel):
    items: list[EpisodeReturn]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last")


def _filters(query: EpisodeReturnsQuery) -> Filters:
    if query.opened_from and query.opened_to and query.opened_from > query.opened_to:
        raise Problem(400, "Some fields are missing or invalid.",
                      errors={"opened_to": "The last day opened must be on or after the first"})
    return Filters(updated_since=query.updated_since, opened_from=query.opened_from, opened_to=query.opened_to)


def _fingerprint(filters: Filters) -> dict:
    """The query a cursor belongs to, as text (the same whatever the offset the moment was written with:
    the moment in UTC, as the filter reads it, so two writings of one filter give one fingerprint)."""
    since = episode_returns.utc_or_none(filters.updated_since) if filters.updated_since else None
    return {"updated_since": since.isoformat() if since else None,
            "opened_from": filters.opened_from.isoformat() if filters.opened_from else None,
            "opened_to": filters.opened_to.isoformat() if filters.opened_to else None}


def _shown(item: episode_returns.EpisodeReturn) -> dict:
    closure = ClosureReason(code=item.closure_reason, label=item.closure_reason_label) \
        if item.status == "closed" else None
    return EpisodeReturn(
        id=item.id, reference=item.reference, opened_on=item.opened_on,
        assessment_submitted_on=item.assessment_submitted_on, closed_on=item.closed_on, updated_at=item.updated_at,
        stage=item.stage, status=item.status, closure_reason=closure,
        outcomes=[OutcomeProgress(**vars(line)) for line in item.outcomes], child_age_band=item.child_age_band,
        nhs_number=item.nhs_number, nhs_number_withheld=item.nhs_number_withheld).model_dump(mode="json")


def install(bp) -> None:
    @bp.get("/reports/episodes")
    @requires(episode_returns.SCOPE)
    @spec.validate(query=EpisodeReturnsQuery, resp=Response(HTTP_200=EpisodeReturns, **PROBLEMS),
                   tags=["reports"], security=SECURITY, operation_id="listEpisodeReturns")
    def episode_returns_page(query: EpisodeReturnsQuery):
        """The authority's episodes for statutory returns, oldest first, by page.

        Only the client's own authority's episodes, never deleted ones. Pages are in episode id order, so
        episodes added while paging appear on a later page and none is listed twice. Follow `next_cursor`
        until it is null; for the next run, pass the time the run began as `updated_since`. Each page read
        is audited with the episodes it listed. The child's date of birth is not sent, only an age band.
        The NHS number is sent only where lawful: consent given, the child not shielded, a number held;
        otherwise `nhs_number_withheld` gives the reason code (see the EpisodeReturn schema).
        """
        filters = _filters(query)
        fingerprint = _fingerprint(filters)
        client_ref = caller().client_id
        after = None
        if query.cursor is not None:
            try:
                after = cursors.read(CURSOR_PURPOSE, query.cursor, client_ref=client_ref, query=fingerprint)
            except cursors.CursorInvalid:
                raise Problem(400, "Some fields are missing or invalid.", errors={
                    "cursor": "Use the next_cursor of the page before, with the same filters"})
        with request_db.transaction() as session:
            client = session.get(ApiClient, caller().id)
            try:
                found = episode_returns.page(session, client, filters, after_id=after, limit=query.limit)
            except episode_returns.ReturnsRefused:
                raise Problem(403)
            answer = {"items": [_shown(item) for item in found.items],
                      "next_cursor": cursors.make(CURSOR_PURPOSE, after=found.last_id, client_ref=client_ref,
                                                  query=fingerprint) if found.last_id is not None else None}
        return answer
