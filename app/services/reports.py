"""Reports for administrators: episodes started, submitted and closed per month, time from start to
submission, closure reasons, deadline breaches and headline outcomes, for one authority and a range
of months.

Everything is counted by the database, grouped by calendar month (UTC) in SQL, so a report reads
one row per month whatever the number of episodes. Percentiles come from PostgreSQL's
percentile_cont; SQLite has none, so there they are computed here from the durations, with the
same method (linear interpolation between the closest ranks).

Deadline breaches are counted from the administrators' alerts (`admin_alert`), one per missed
deadline: the alert carries its authority and kind as columns, so no JSON in the audit trail has to
be read, and it is the record the administrator works from.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from math import floor

from sqlalchemy import Float, cast, distinct, extract, func, literal_column, select, tuple_
from sqlalchemy.orm import Session

from app import policy
from app.models import HEADLINE_OUTCOMES, AdminAlert, Episode, OutcomeRecord, User

MAX_MONTHS = 120
DAY_SECONDS = 86400.0
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CLOSURE_REASONS = {
    "needs_met": "Needs met",
    "family_disengaged": "Family disengaged",
    "moved_local_authority": "Moved to another local authority",
    "stepped_up_social_care": "Stepped up to children's social care",
    "lead_professional_transferred": "Lead professional or plan transferred",
    "upper_age_limit": "Child reached the upper age limit",
    "child_died": "Child died",
    "consent_refused": "Consent refused",
    "consent_withdrawn": "Consent withdrawn",
    "safeguarding_referral": "Referred to safeguarding",
    "transferred": "Transferred to another authority",
    "other": "Other",
}


# ---------------------------------------------------------------- months

def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Period:
    """Whole calendar months, `first` to `last` inclusive (each the first day of its month)."""
    first: date
    last: date

    @classmethod
    def last_twelve_months(cls, today: date) -> "Period":
        this_month = today.replace(day=1)
        return cls(add_months(this_month, -11), this_month)

    @property
    def start(self) -> datetime:
        return month_start(self.first)

    @property
    def end(self) -> datetime:
        """The first moment after the period."""
        return month_start(add_months(self.last, 1))

    @property
    def months(self) -> list[date]:
        count = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        return [add_months(self.first, n) for n in range(count)]

    def describe(self) -> dict:
        return {"from": f"{self.first:%Y-%m}", "to": f"{self.last:%Y-%m}"}


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def month_of(session: Session, column):
    """The calendar month (UTC) of a timestamp column, as SQL. Literals, not parameters, so that the
    same expression in SELECT and GROUP BY is the same text to PostgreSQL."""
    if _is_postgresql(session):
        return func.date_trunc(literal_column("'month'"), func.timezone(literal_column("'UTC'"), column))
    return func.strftime(literal_column("'%Y-%m'"), column)


def as_month(value) -> date:
    """A month from the database: a timestamp (PostgreSQL) or "YYYY-MM" text (SQLite)."""
    if isinstance(value, str):
        year, month = value.split("-")[:2]
        return date(int(year), int(month), 1)
    return date(value.year, value.month, 1)


# ---------------------------------------------------------------- tables

@dataclass
class Table:
    name: str
    title: str
    headers: list[str]
    rows: list[list] = field(default_factory=list)
    total: list | None = None  # a summary row, shown and downloaded last
    note: str | None = None


def _in_period(column, authority_column, admin: User, period: Period):
    return (policy.authority_clause(admin, authority_column), column >= period.start, column < period.end)


def _monthly_counts(session: Session, model, column, authority_column, admin: User, period: Period,
                    *where) -> dict[date, int]:
    month = month_of(session, column)
    rows = session.execute(select(month, func.count()).select_from(model)
                           .where(*_in_period(column, authority_column, admin, period), *where)
                           .group_by(month))
    return {as_month(value): count for value, count in rows}


def months_table(session: Session, admin: User, period: Period) -> Table:
    columns = (("Started", Episode.started_at), ("Submitted", Episode.submitted_at),
               ("Closed", Episode.closed_at), ("Deleted", Episode.deleted_at))
    counts = [_monthly_counts(session, Episode, column, Episode.authority_id, admin, period)
              for _, column in columns]
    rows = [[month] + [by_month.get(month, 0) for by_month in counts] for month in period.months]
    total = ["Total"] + [sum(row[i + 1] for row in rows) for i in range(len(columns))]
    return Table("months", "Episodes per month", ["Month"] + [label for label, _ in columns], rows, total,
                 note="Each episode counts in the month it was started, submitted, closed or deleted.")


def percentile(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks of sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass
class Durations:
    count: int
    median: float | None
    p90: float | None


def _submitted(admin: User, period: Period):
    return _in_period(Episode.submitted_at, Episode.authority_id, admin, period)


def _durations_postgresql(session: Session, admin: User, period: Period) -> tuple[dict, Durations]:
    """One pass: each month's group and, through GROUPING SETS, the whole period's."""
    days = cast(extract("epoch", Episode.submitted_at - Episode.started_at), Float) / DAY_SECONDS
    month = month_of(session, Episode.submitted_at)
    rows = session.execute(
        select(month, func.grouping(month), func.count(),
               func.percentile_cont(literal_column("0.5")).within_group(days),
               func.percentile_cont(literal_column("0.9")).within_group(days))
        .where(*_submitted(admin, period)).group_by(func.grouping_sets(tuple_(month), tuple_())))
    by_month, overall = {}, Durations(0, None, None)
    for value, whole_period, n, median, p90 in rows:
        durations = Durations(n, _float(median), _float(p90))
        if whole_period:
            overall = durations
        else:
            by_month[as_month(value)] = durations
    return by_month, overall


def _durations_sqlite(session: Session, admin: User, period: Period) -> tuple[dict, Durations]:
    days = func.julianday(Episode.submitted_at) - func.julianday(Episode.started_at)
    month = month_of(session, Episode.submitted_at)
    grouped: dict[date, list[float]] = {}
    for value, duration in session.execute(select(month, days).where(*_submitted(admin, period))):
        grouped.setdefault(as_month(value), []).append(duration)
    by_month = {m: Durations(len(v), percentile(v, 0.5), percentile(v, 0.9)) for m, v in grouped.items()}
    every = [d for values in grouped.values() for d in values]
    return by_month, Durations(len(every), percentile(every, 0.5), percentile(every, 0.9))


def _float(value) -> float | None:
    return None if value is None else float(value)


def time_to_submit_table(session: Session, admin: User, period: Period) -> Table:
    measure = _durations_postgresql if _is_postgresql(session) else _durations_sqlite
    by_month, overall = measure(session, admin, period)
    empty = Durations(0, None, None)
    rows = [[m, d.count, _days(d.median), _days(d.p90)] for m in period.months for d in [by_month.get(m, empty)]]
    total = ["All months", overall.count, _days(overall.median), _days(overall.p90)]
    return Table("time_to_submit", "Days from start to submission",
                 ["Month submitted", "Assessments submitted", "Median days", "90th percentile days"], rows, total,
                 note="Calendar days from the start of the episode to the submission of its assessment, "
                      "by the month it was submitted. 90th percentile: nine in ten took this long or less.")


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def closure_reasons_table(session: Session, admin: User, period: Period) -> Table:
    count = func.count()
    rows = session.execute(
        select(Episode.outcome, count).where(*_in_period(Episode.closed_at, Episode.authority_id, admin,
                                                         period), Episode.status == "closed")
        .group_by(Episode.outcome).order_by(count.desc(), Episode.outcome)).all()
    closed = sum(n for _, n in rows)
    table_rows = [[reason_label(code), code or "", n, round(100.0 * n / closed, 1)] for code, n in rows]
    return Table("closure_reasons", "Closure reasons", ["Reason", "Code", "Episodes closed", "Per cent"],
                 table_rows, ["Total", "", closed, 100.0 if closed else None],
                 note="Episodes closed in these months, by the reason recorded when they were closed.")


def reason_label(code: str | None) -> str:
    if not code:
        return "Not recorded"
    return CLOSURE_REASONS.get(code, code.replace("_", " ").capitalize())


def deadline_breaches_table(session: Session, admin: User, period: Period) -> Table:
    kinds = (("35-day limit missed", "assessment_overdue"),
             ("48-hour child-protection limit missed", "child_protection_overdue"),
             ("Service response time missed", "service_response_overdue"))
    counts = [_monthly_counts(session, AdminAlert, AdminAlert.raised_at, AdminAlert.authority_id, admin,
                              period, AdminAlert.kind == kind) for _, kind in kinds]
    rows = [[month] + [c.get(month, 0) for c in counts] for month in period.months]
    for row in rows:
        row.append(sum(row[1:]))
    total = ["Total"] + [sum(row[i] for row in rows) for i in range(1, len(kinds) + 2)]
    return Table("deadline_breaches", "Deadline breaches", ["Month"] + [label for label, _ in kinds] + ["Total"],
                 rows, total, note="Deadlines missed in each month: the alerts raised for the administrator.")


# What each column of the outcomes table counts: (stage, progress) of the statements; None: any progress.
OUTCOME_COLUMNS = (("Chosen at an action plan", "action_plan", None), ("Met at closure", "closure", "met"),
                   ("Checked at six months", "six_months", None),
                   ("Sustained at six months", "six_months", "sustained"))


def outcomes_table(session: Session, admin: User, period: Period) -> Table:
    """Episodes per headline outcome: chosen at an action plan, met at closure, and checked and
    sustained six months after closure, each counted once in the period the statement was made."""
    episodes = func.count(distinct(OutcomeRecord.episode_id))
    found = session.execute(
        select(OutcomeRecord.outcome, OutcomeRecord.stage, OutcomeRecord.progress, episodes)
        .where(*_in_period(OutcomeRecord.recorded_at, OutcomeRecord.authority_id, admin, period))
        .group_by(OutcomeRecord.outcome, OutcomeRecord.stage, OutcomeRecord.progress)).all()
    any_progress = session.execute(
        select(OutcomeRecord.outcome, OutcomeRecord.stage, episodes)
        .where(*_in_period(OutcomeRecord.recorded_at, OutcomeRecord.authority_id, admin, period))
        .group_by(OutcomeRecord.outcome, OutcomeRecord.stage)).all()
    counts = {(code, stage, progress): n for code, stage, progress, n in found}
    counts.update({(code, stage, None): n for code, stage, n in any_progress})
    rows = [[label, code] + [counts.get((code, stage, progress), 0) for _, stage, progress in OUTCOME_COLUMNS]
            for code, label in HEADLINE_OUTCOMES.items()]
    total = ["All outcomes", ""] + [sum(row[i] for row in rows) for i in range(2, 2 + len(OUTCOME_COLUMNS))]
    return Table("outcomes", "Headline outcomes", ["Headline outcome", "Code"] + [c[0] for c in OUTCOME_COLUMNS],
                 rows, total,
                 note="Episodes for each Supporting Families headline outcome: chosen in an action plan, met at "
                      "closure, checked six months after closure and found sustained, each counted in the months "
                      "the plan, the closure or the check was recorded.")


BUILDERS = {"months": months_table, "time_to_submit": time_to_submit_table,
            "closure_reasons": closure_reasons_table, "deadline_breaches": deadline_breaches_table,
            "outcomes": outcomes_table}
TABLES = tuple(BUILDERS)


def table(session: Session, admin: User, name: str, period: Period) -> Table:
    return BUILDERS[name](session, admin, period)


def all_tables(session: Session, admin: User, period: Period) -> list[Table]:
    return [builder(session, admin, period) for builder in BUILDERS.values()]


# ---------------------------------------------------------------- CSV

def csv_cell(value) -> str | int | float:
    """A cell as text a spreadsheet will not run: text starting like a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, date):
        return f"{value:%Y-%m}"
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_csv(found: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(h) for h in found.headers])
    for row in found.rows + ([found.total] if found.total else []):
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()
