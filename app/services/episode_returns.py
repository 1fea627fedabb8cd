"""The authority's episodes as data for statutory returns (GET /api/v1/reports/episodes).

A page is read by a client system for its authority: the episodes the policy lets it list, oldest
first by id (so a page never shifts when episodes are added: new ones come after the last page),
each with its dates, stage, closure reason, headline outcomes and the child's age band, and the NHS
number where the policy says sending it is lawful. Three statements at most whatever the page size:
the episodes with their child, the outcome statements of the page, and (only for episodes moved in
from another authority) their plans. Each page read is audited with the episode ids it listed.

The child's date of birth is not sent: returns count children by age band, and a date of birth
beside the episode would identify a child whose NHS number the policy withheld.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import policy
from app.audit_lists import episodes_shown
from app.clock import as_utc
from app.models import HEADLINE_OUTCOMES, ApiClient, Artefact, Authority, Child, Episode, OutcomeRecord
from app.models.episode import episode_reference
from app.models.outcome import PROGRESS_LABELS
from app.services.api_clients import today
from app.services.reports import reason_label
from app.uk_time import LONDON, local

SCOPE = "reports:read"
DEFAULT_PAGE, MAX_PAGE = 100, 500
PAGE = "api_episode_returns"
# Age at the date the episode was opened, in the bands children's services returns count by.
AGE_BANDS = ((1, "under_1"), (5, "1_to_4"), (10, "5_to_9"), (16, "10_to_15"))
OLDEST_BAND, UNKNOWN_AGE = "16_and_over", "unknown"
_ORDER = {code: n for n, code in enumerate(HEADLINE_OUTCOMES)}


class ReturnsRefused(PermissionError):
    """The client is not live or lacks the reports:read scope."""


@dataclass(frozen=True)
class Filters:
    """Which episodes: changed at or after `updated_since`, opened on `opened_from` to `opened_to` (UK days)."""
    updated_since: datetime | None = None
    opened_from: date | None = None
    opened_to: date | None = None


@dataclass
class OutcomeLine:
    code: str
    label: str
    progress: str  # the latest statement at a review or closure, else "chosen"
    progress_label: str
    progress_stage: str | None
    progress_recorded_on: date | None
    six_month_check: str | None  # sustained or not_sustained, once the check is recorded


@dataclass
class EpisodeReturn:
    id: int
    reference: str
    opened_on: date
    assessment_submitted_on: date | None
    closed_on: date | None
    updated_at: datetime
    stage: str
    status: str
    closure_reason: str | None
    closure_reason_label: str | None
    child_age_band: str
    nhs_number: str | None
    nhs_number_withheld: str | None
    outcomes: list[OutcomeLine] = field(default_factory=list)


@dataclass
class Page:
    items: list[EpisodeReturn]
    last_id: int | None  # the id to read after for the next page; None on the last page


def page(session: Session, client: ApiClient, filters: Filters, *, after_id: int | None = None,
         limit: int = DEFAULT_PAGE) -> Page:
    if not policy.is_live_client(client, today()) or not policy.client_may(client, SCOPE):
        raise ReturnsRefused(f"client {client.client_id if client else None} may not read returns")
    limit = max(1, min(limit, MAX_PAGE))
    rows = session.execute(
        select(Episode.id, Episode.status, Episode.stage, Episode.outcome, Episode.consent_state,
               Episode.started_at, Episode.submitted_at, Episode.closed_at, Episode.updated_at,
               Episode.transferred_from, Authority.code, Child.date_of_birth, Child.nhs_number,
               Child.nhs_number_missing, Child.shielded, Child.updated_at.label("child_updated_at"))
        .join(Authority, Authority.id == Episode.authority_id)
        .outerjoin(Child, Child.id == Episode.child_id)
        .where(policy.returns_episode_filter(client), *_chosen_by(filters),
               *([Episode.id > after_id] if after_id is not None else []))
        .order_by(Episode.id).limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    outcomes = _outcomes(session, rows)
    items = [_item(row, outcomes.get(row.id, [])) for row in rows]
    episodes_shown(session, None, PAGE, [item.id for item in items], client=client.name,
                   client_ref=client.client_id, authority_id=client.authority_id)
    return Page(items, rows[-1].id if more and rows else None)


# ---------------------------------------------------------------- which episodes

def _chosen_by(filters: Filters) -> list:
    where = []
    if filters.updated_since is not None and (since := utc_or_none(filters.updated_since)) is not None:
        # The child's record counts too: shielding it or recording its NHS number changes what is sent.
        where.append(or_(Episode.updated_at >= since, Child.updated_at >= since))
    if filters.opened_from is not None and (start := _uk_day_start(filters.opened_from)) is not None:
        where.append(Episode.started_at >= start)
    if filters.opened_to is not None and (end := _uk_day_start(filters.opened_to + timedelta(days=1))
                                          if filters.opened_to < date.max else None) is not None:
        where.append(Episode.started_at < end)
    return where


def utc_or_none(moment: datetime) -> datetime | None:
    """UTC; at the ends of the calendar (year 1 ahead of UTC, year 9999 behind it) the nearest moment there is."""
    try:
        return as_utc(moment)
    except OverflowError:
        return None if moment.year < 5000 else datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def _uk_day_start(day: date) -> datetime | None:
    try:
        return as_utc(datetime.combine(day, time(0), tzinfo=LONDON))
    except OverflowError:
        return None


# ---------------------------------------------------------------- each episode

def _uk_date(moment: datetime | None) -> date | None:
    return None if moment is None else local(moment).date()


def age_band(born: date | None, on: date) -> str:
    if born is None or born > on:
        return UNKNOWN_AGE
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return next((band for limit, band in AGE_BANDS if years < limit), OLDEST_BAND)


def _item(row, outcomes: list[OutcomeLine]) -> EpisodeReturn:
    number, withheld = policy.nhs_number_for_returns(consent_state=row.consent_state, shielded=row.shielded,
                                                     nhs_number=row.nhs_number, missing_reason=row.nhs_number_missing)
    closed = row.status == "closed"
    opened_on = _uk_date(row.started_at)
    return EpisodeReturn(
        id=row.id, reference=episode_reference(row.code, row.id), opened_on=opened_on,
        assessment_submitted_on=_uk_date(row.submitted_at), closed_on=_uk_date(row.closed_at),
        updated_at=max(as_utc(row.updated_at), as_utc(row.child_updated_at or row.updated_at)),
        stage=row.stage, status=row.status,
        closure_reason=row.outcome if closed else None, closure_reason_label=reason_label(row.outcome) if closed else None,
        child_age_band=age_band(row.date_of_birth, opened_on), nhs_number=number, nhs_number_withheld=withheld,
        outcomes=outcomes)


# ---------------------------------------------------------------- headline outcomes, one read per page

def _outcomes(session: Session, rows) -> dict[int, list[OutcomeLine]]:
    ids = [row.id for row in rows]
    if not ids:
        return {}
    statements: dict[int, list[OutcomeRecord]] = {}
    for record in session.scalars(select(OutcomeRecord).where(OutcomeRecord.episode_id.in_(ids))
                                  .order_by(OutcomeRecord.episode_id, OutcomeRecord.id)):
        statements.setdefault(record.episode_id, []).append(record)
    # An episode moved in brings its plans as records only: its latest plan's choice stands (app/outcomes.py).
    moved_in = [row.id for row in rows if row.transferred_from and not any(
        r.stage == "action_plan" for r in statements.get(row.id, []))]
    plans = _moved_in_plans(session, moved_in) if moved_in else {}
    return {episode_id: _lines(statements.get(episode_id, []), plans.get(episode_id, []))
            for episode_id in ids if episode_id in statements or episode_id in plans}


def _moved_in_plans(session: Session, episode_ids: list[int]) -> dict[int, list[str]]:
    chosen: dict[int, list[str]] = {}
    for episode_id, data in session.execute(
            select(Artefact.episode_id, Artefact.data).where(Artefact.episode_id.in_(episode_ids),
                                                             Artefact.kind == "action_plan")
            .order_by(Artefact.episode_id, Artefact.version)):
        codes = (data or {}).get("headline_outcomes") or []
        chosen[episode_id] = [code for code in codes if code in HEADLINE_OUTCOMES]  # the latest version wins
    return chosen


def _lines(records: list[OutcomeRecord], planned: list[str]) -> list[OutcomeLine]:
    plans = [r for r in records if r.stage == "action_plan"]
    # The current plan: every statement of the latest action plan submission (they share its task id).
    chosen = [r.outcome for r in plans if r.human_task_id == plans[-1].human_task_id] if plans else planned
    progress, checked = {}, {}
    for record in records:  # in id order: the last statement of each outcome wins
        if record.stage in ("review", "closure"):
            progress[record.outcome] = record
        elif record.stage == "six_months":
            checked[record.outcome] = record.progress
    codes = set(chosen) | {r.outcome for r in progress.values() if r.stage == "closure"} | set(checked)
    lines = []
    for code in sorted(codes, key=lambda c: _ORDER.get(c, len(_ORDER))):
        latest = progress.get(code)
        said = latest.progress if latest else "chosen"
        lines.append(OutcomeLine(code=code, label=HEADLINE_OUTCOMES.get(code, code), progress=said,
                                 progress_label=PROGRESS_LABELS.get(said, said),
                                 progress_stage=latest.stage if latest else None,
                                 progress_recorded_on=_uk_date(latest.recorded_at) if latest else None,
                                 six_month_check=checked.get(code)))
    return lines
