"""Reports: counts per month grouped by the database, percentiles of the time to submit, closure
reasons, deadline breaches, the page's month range and CSV downloads guarded against formulas."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from unittest.mock import ANY

import pytest
from sqlalchemy import select

from app.clock import now
from app.models import AdminAlert, AuditEvent, Authority, Episode, Organisation, ProcessVersion, User
from app.services import reports
from tests.conftest import VETTED
from tests.web import browser, give_credentials, text_of

UTC = timezone.utc
SPRING = reports.Period(date(2025, 1, 1), date(2025, 3, 1))


def at(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def add_episode(runtime, people, started: datetime, *, submitted: datetime | None = None,
                closed: datetime | None = None, outcome: str | None = None, deleted: datetime | None = None,
                authority_id: int | None = None) -> int:
    """An episode row with the given times (no workflow: reports read only the columns)."""
    with runtime.db.session() as session:
        version = session.scalar(select(ProcessVersion.id).limit(1))
        status = "deleted" if deleted else "closed" if closed else "open"
        episode = Episode(authority_id=authority_id or people["authority"], process_version_id=version,
                          originator_id=people["originator"], status=status, outcome=outcome, started_at=started,
                          updated_at=started, submitted_at=submitted, closed_at=closed, deleted_at=deleted)
        session.add(episode)
        session.flush()
        return episode.id


def another_authority(runtime) -> int:
    with runtime.db.session() as session:
        elsewhere = Authority(code="OTH", name="Otherborough")
        session.add(elsewhere)
        session.flush()
        return elsewhere.id


def build(runtime, people, name: str, period: reports.Period = SPRING) -> reports.Table:
    with runtime.db.session() as session:
        return reports.table(session, session.get(User, people["admin"]), name, period)


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def signed_in(web, who: str = "admin", username: str = "adam"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ---------------------------------------------------------------- months

def test_months_are_grouped_by_calendar_month_in_utc(runtime, people):
    elsewhere = another_authority(runtime)
    add_episode(runtime, people, at(2025, 1, 31, 23, 30), submitted=at(2025, 2, 1, 0, 5))
    add_episode(runtime, people, at(2025, 2, 1, 0, 10), submitted=at(2025, 2, 20), closed=at(2025, 3, 31, 23, 59),
                outcome="needs_met")
    add_episode(runtime, people, at(2025, 2, 14), deleted=at(2025, 3, 21))
    add_episode(runtime, people, at(2024, 12, 31, 23, 59), submitted=at(2025, 1, 10))  # started before the period
    add_episode(runtime, people, at(2025, 4, 1, 0, 0))  # after it
    add_episode(runtime, people, at(2025, 2, 2), authority_id=elsewhere)  # another authority's
    table = build(runtime, people, "months")
    assert table.headers == ["Month", "Started", "Submitted", "Closed", "Deleted"]
    assert table.rows == [[date(2025, 1, 1), 1, 1, 0, 0],
                          [date(2025, 2, 1), 2, 2, 0, 0],
                          [date(2025, 3, 1), 0, 0, 1, 1]]
    assert table.total == ["Total", 3, 3, 1, 1]


def test_months_without_episodes_show_zero(runtime, people):
    table = build(runtime, people, "months", reports.Period(date(2024, 11, 1), date(2025, 2, 1)))
    assert [row[0] for row in table.rows] == [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1),
                                              date(2025, 2, 1)]
    assert all(row[1:] == [0, 0, 0, 0] for row in table.rows)


def test_the_period_defaults_to_the_last_twelve_months():
    period = reports.Period.last_twelve_months(date(2026, 3, 17))
    assert (period.first, period.last, len(period.months)) == (date(2025, 4, 1), date(2026, 3, 1), 12)
    assert period.end == at(2026, 4, 1, 0)


# ---------------------------------------------------------------- time to submit

def test_median_and_90th_percentile_days_to_submit(runtime, people):
    for days in (1, 2, 3, 4, 10):
        add_episode(runtime, people, at(2025, 2, 25) - timedelta(days=days), submitted=at(2025, 2, 25))
    add_episode(runtime, people, at(2025, 3, 1), submitted=at(2025, 3, 6))
    add_episode(runtime, people, at(2025, 3, 1))  # not submitted: not counted
    table = build(runtime, people, "time_to_submit")
    assert table.rows == [[date(2025, 1, 1), 0, None, None],
                          [date(2025, 2, 1), 5, 3.0, 7.6],  # 4 + 0.6 * (10 - 4), as percentile_cont
                          [date(2025, 3, 1), 1, 5.0, 5.0]]
    assert table.total == ["All months", 6, 3.5, 7.5]


def test_the_python_percentile_interpolates_like_percentile_cont():
    assert reports.percentile([], 0.5) is None
    assert reports.percentile([7.0], 0.9) == 7.0
    assert reports.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert reports.percentile([10, 1, 4, 3, 2], 0.9) == pytest.approx(7.6)


# ---------------------------------------------------------------- closure reasons and breaches

def test_closure_reasons_are_counted_for_episodes_closed_in_the_period(runtime, people):
    for outcome in ("needs_met", "needs_met", "family_disengaged", "stepped_up_social_care"):
        add_episode(runtime, people, at(2025, 1, 5), closed=at(2025, 2, 10), outcome=outcome)
    add_episode(runtime, people, at(2024, 1, 5), closed=at(2024, 2, 10), outcome="needs_met")  # before
    table = build(runtime, people, "closure_reasons")
    assert table.rows[0] == ["Needs met", "needs_met", 2, 50.0]
    assert sorted(row[1] for row in table.rows[1:]) == ["family_disengaged", "stepped_up_social_care"]
    assert table.total == ["Total", "", 4, 100.0]


def test_deadline_breaches_count_the_alerts_per_month_and_kind(runtime, people):
    elsewhere = another_authority(runtime)
    episode_id = add_episode(runtime, people, at(2025, 1, 1))
    with runtime.db.session() as session:
        for kind, raised, authority in (("assessment_overdue", at(2025, 2, 5), people["authority"]),
                                        ("assessment_overdue", at(2025, 2, 28, 23, 59), people["authority"]),
                                        ("child_protection_overdue", at(2025, 1, 3), people["authority"]),
                                        ("service_response_overdue", at(2025, 3, 9), people["authority"]),
                                        ("assessment_overdue", at(2025, 4, 1, 0, 1), people["authority"]),
                                        ("assessment_overdue", at(2025, 2, 5), elsewhere)):
            session.add(AdminAlert(episode_id=episode_id, authority_id=authority, kind=kind, message="Missed",
                                   raised_at=raised))
    table = build(runtime, people, "deadline_breaches")
    assert table.rows == [[date(2025, 1, 1), 0, 1, 0, 1], [date(2025, 2, 1), 2, 0, 0, 2],
                          [date(2025, 3, 1), 0, 0, 1, 1]]
    assert table.total == ["Total", 2, 1, 1, 4]


# ---------------------------------------------------------------- CSV

def test_csv_cells_that_look_like_formulas_are_quoted():
    table = reports.Table("closure_reasons", "Closure reasons", ["Reason", "=Code"], [
        ["=HYPERLINK(\"http://evil\")", "+1"], ["-2+3", "@SUM(A1)"], ["\tTabbed", "plain, with comma"],
        [date(2025, 2, 1), -4], [None, 2.5]])
    rows = rows_of(reports.as_csv(table))
    assert rows == [["Reason", "'=Code"], ["'=HYPERLINK(\"http://evil\")", "'+1"], ["'-2+3", "'@SUM(A1)"],
                    ["'\tTabbed", "plain, with comma"], ["2025-02", "-4"], ["", "2.5"]]


def test_the_csv_download_is_an_attachment_with_a_header_row_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    add_episode(runtime, people, at(2025, 1, 5), closed=at(2025, 2, 10), outcome="=cmd|' /C calc'!A0")
    admin = signed_in(web)
    query = "?from_month=1&from_year=2025&to_month=3&to_year=2025"
    download = admin.get("/reports/closure_reasons.csv" + query)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == \
        'attachment; filename="ecaf-closure-reasons-2025-01-to-2025-03.csv"'
    rows = rows_of(download.get_data(as_text=True))
    assert rows[0] == ["Reason", "Code", "Episodes closed", "Per cent"]
    assert rows[1][1] == "'=cmd|' /C calc'!A0" and rows[1][0].startswith("'=")
    months = rows_of(admin.get("/reports/months.csv" + query).get_data(as_text=True))
    assert months[0] == ["Month", "Started", "Submitted", "Closed", "Deleted"]
    assert months[1:] == [["2025-01", "1", "0", "0", "0"], ["2025-02", "0", "0", "1", "0"],
                          ["2025-03", "0", "0", "0", "0"], ["Total", "1", "0", "1", "0"]]
    for name in ("time_to_submit", "deadline_breaches"):
        assert admin.get(f"/reports/{name}.csv" + query).status_code == 200
    assert [e.detail for e in audited(runtime, "report_downloaded")][0] == {
        "table": "closure_reasons", "from": "2025-01", "to": "2025-03", "request_ref": ANY}
    assert len(audited(runtime, "report_downloaded")) == 4
    assert admin.get("/reports/secrets.csv").status_code == 404
    assert admin.get("/reports/months.csv?from_month=13&from_year=2025&to_month=1&to_year=2025").status_code == 400


# ---------------------------------------------------------------- the page

def test_the_page_shows_every_table_for_the_last_twelve_months_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    add_episode(runtime, people, now() - timedelta(days=3), submitted=now() - timedelta(days=1))
    page = signed_in(web).get("/reports")
    assert page.status_code == 200
    shown = text_of(page)
    for title in ("Episodes per month", "Days from start to submission", "Closure reasons", "Deadline breaches"):
        assert title in shown
    html = page.get_data(as_text=True)
    for name in reports.TABLES:
        assert f"/reports/{name}.csv?" in html
    assert '<th scope="col"' in html and '<th scope="row"' in html
    this_month = now().date().replace(day=1)
    first = reports.add_months(this_month, -11)
    assert f'id="from-month" name="from_month" type="text" inputmode="numeric" value="{first.month}"' in html
    [viewed] = audited(runtime, "report_viewed")
    assert viewed.detail == {"from": f"{first:%Y-%m}", "to": f"{this_month:%Y-%m}", "request_ref": ANY}


def test_bad_months_give_an_error_summary_and_keep_what_was_typed(web):
    admin = signed_in(web)
    bad = admin.get("/reports?from_month=13&from_year=2025&to_month=&to_year=2025")
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "<title>Error: " in html
    assert 'href="#from-month"' in html and 'href="#to-month"' in html
    assert 'value="13"' in html and "must include a month" in text_of(bad)
    backwards = admin.get("/reports?from_month=3&from_year=2025&to_month=1&to_year=2025")
    assert backwards.status_code == 400 and "same as or after the first month" in text_of(backwards)
    future = now().date().year + 1
    ahead = admin.get(f"/reports?from_month=1&from_year=2025&to_month=1&to_year={future}")
    assert ahead.status_code == 400 and "this month or earlier" in text_of(ahead)
    assert "Correct the months" in text_of(bad)


def test_only_administrators_see_reports_and_only_their_authoritys(web):
    runtime, people = web["runtime"], web["people"]
    add_episode(runtime, people, now() - timedelta(days=2))
    practitioner = signed_in(web, "originator", "olive")
    assert practitioner.get("/reports").status_code == 403
    assert practitioner.get("/reports/months.csv").status_code == 403
    elsewhere = another_authority(runtime)
    with runtime.db.session() as session:
        town_hall = Organisation(name="Otherborough Council", kind="council_service", authority_id=elsewhere)
        session.add(town_hall)
        session.flush()
        otto = User(username="otto", email="otto@other.test", full_name="Otto Other", role="administrator",
                    organisation_id=town_hall.id, created_at=now(), **VETTED)
        session.add(otto)
        session.flush()
        otto_id = otto.id
    other = browser(web["app"])
    other.sign_in("otto", give_credentials(runtime, otto_id))
    rows = rows_of(other.get("/reports/months.csv").get_data(as_text=True))
    assert rows[-1] == ["Total", "0", "0", "0", "0"]
    mine = rows_of(signed_in(web).get("/reports/months.csv").get_data(as_text=True))
    assert mine[-1] == ["Total", "1", "0", "0", "0"]
