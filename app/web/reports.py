"""Reports for administrators, on the page and as CSV downloads; viewing and downloading are audited."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, render_template, request

from app import audit
from app.clock import now
from app.services import reports
from app.web import runtime
from app.web.access import current_user, roles

bp = Blueprint("reports", __name__)
ENDS = (("from", "the first month"), ("to", "the last month"))


def _month(args, end: str, label: str) -> tuple[date | None, str | None]:
    month, year = (args.get(f"{end}_month") or "").strip(), (args.get(f"{end}_year") or "").strip()
    if not month and not year:
        return None, f"Enter {label}"
    if not month or not year:
        return None, f"{label[0].upper()}{label[1:]} must include a {'month' if not month else 'year'}"
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12 and len(year) == 4 and int(year) >= 2000):
        return None, f"{label[0].upper()}{label[1:]} must be a real month, like 4 2025"
    value = date(int(year), int(month), 1)
    if value > now().date():
        return None, f"{label[0].upper()}{label[1:]} must be this month or earlier"
    return value, None


def period_from(args) -> tuple[dict, reports.Period | None, dict]:
    """(what was typed, the period, errors by field); the last 12 months when nothing was typed."""
    typed = {f"{end}_{part}": (args.get(f"{end}_{part}") or "").strip()[:4]
             for end, _ in ENDS for part in ("month", "year")}
    if not any(typed.values()):
        period = reports.Period.last_twelve_months(now().date())
        typed = {"from_month": str(period.first.month), "from_year": str(period.first.year),
                 "to_month": str(period.last.month), "to_year": str(period.last.year)}
        return typed, period, {}
    errors, ends = {}, {}
    for end, label in ENDS:
        ends[end], problem = _month(args, end, label)
        if problem:
            errors[f"{end}-month"] = problem
    if errors:
        return typed, None, errors
    period = reports.Period(ends["from"], ends["to"])
    if period.first > period.last:
        errors["to-month"] = "The last month must be the same as or after the first month"
    elif len(period.months) > reports.MAX_MONTHS:
        errors["to-month"] = f"Choose at most {reports.MAX_MONTHS} months"
    return typed, (None if errors else period), errors


@bp.get("/reports")
@roles("administrator")
def index():
    typed, period, errors = period_from(request.args)
    tables = []
    with runtime().db.session() as session:
        if period is not None:
            tables = reports.all_tables(session, current_user(), period)
            audit.record(session, "report_viewed", actor_id=current_user().id, **period.describe())
        html = render_template("reports/index.html", tables=tables, typed=typed, errors=errors,
                               error_title=bool(errors), period=period)
    return html, 400 if errors else 200


@bp.get("/reports/<table>.csv")
@roles("administrator")
def csv(table: str):
    if table not in reports.TABLES:
        abort(404)
    _, period, errors = period_from(request.args)
    if errors:
        abort(400)
    with runtime().db.session() as session:
        found = reports.table(session, current_user(), table, period)
        audit.record(session, "report_downloaded", actor_id=current_user().id, table=table, **period.describe())
    described = period.describe()
    filename = f"ecaf-{table.replace('_', '-')}-{described['from']}-to-{described['to']}.csv"
    return Response(reports.as_csv(found), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
