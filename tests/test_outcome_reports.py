"""The headline outcomes report: episodes per outcome chosen, met at closure, checked and sustained at
six months, for the administrator's own authority and the chosen months, on the page and as CSV."""
from __future__ import annotations

from datetime import datetime

from app.models import OutcomeRecord
from app.services import reports

from .test_reports import SPRING, add_episode, another_authority, at, audited, build, rows_of, signed_in

CODES = ["education", "early_years", "health", "substance_use", "family_relationships", "safe_from_abuse", "crime",
         "domestic_abuse", "housing", "financial_stability"]


def state(runtime, episode_id: int, authority_id: int, stage: str, statements: dict[str, str], when: datetime):
    with runtime.db.session() as session:
        for code, progress in statements.items():
            session.add(OutcomeRecord(episode_id=episode_id, authority_id=authority_id, outcome=code, stage=stage,
                                      progress=progress, recorded_at=when))


def test_outcomes_are_counted_per_outcome_once_per_episode_in_the_period(runtime, people):
    home, elsewhere = people["authority"], another_authority(runtime)
    first = add_episode(runtime, people, at(2024, 12, 1))
    second = add_episode(runtime, people, at(2025, 1, 2))
    theirs = add_episode(runtime, people, at(2025, 1, 2), authority_id=elsewhere)
    # The first plan chose two outcomes, a later plan the same again: the episode counts once.
    state(runtime, first, home, "action_plan", {"education": "chosen", "housing": "chosen"}, at(2025, 1, 5))
    state(runtime, first, home, "action_plan", {"education": "chosen", "housing": "chosen"}, at(2025, 2, 5))
    state(runtime, first, home, "review", {"education": "met", "housing": "some_progress"}, at(2025, 2, 20))
    state(runtime, first, home, "closure", {"education": "met", "housing": "not_met"}, at(2025, 3, 1))
    state(runtime, second, home, "action_plan", {"education": "chosen"}, at(2025, 1, 10))
    state(runtime, second, home, "closure", {"education": "met"}, at(2025, 1, 31, 23, 59))
    state(runtime, second, home, "six_months", {"education": "sustained"}, at(2025, 3, 31, 23, 0))
    state(runtime, first, home, "six_months", {"education": "not_sustained"}, at(2025, 4, 1, 0, 0))  # after
    state(runtime, second, home, "action_plan", {"crime": "chosen"}, at(2024, 12, 31, 23, 59))  # before
    state(runtime, theirs, elsewhere, "action_plan", {"education": "chosen"}, at(2025, 1, 10))  # not ours
    state(runtime, theirs, elsewhere, "closure", {"education": "met"}, at(2025, 2, 10))

    table = build(runtime, people, "outcomes")
    assert table.headers == ["Headline outcome", "Code", "Chosen at an action plan", "Met at closure",
                             "Checked at six months", "Sustained at six months"]
    assert [row[1] for row in table.rows] == CODES
    by_code = {row[1]: row[2:] for row in table.rows}
    assert by_code["education"] == [2, 2, 1, 1]
    assert by_code["housing"] == [1, 0, 0, 0]
    assert by_code["crime"] == [0, 0, 0, 0]
    assert table.rows[0][0] == "Getting a good education"
    assert table.total == ["All outcomes", "", 3, 2, 1, 1]


def test_the_outcomes_csv_is_the_table_and_is_audited(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = add_episode(runtime, people, at(2025, 1, 2))
    state(runtime, episode_id, people["authority"], "action_plan", {"housing": "chosen"}, at(2025, 2, 1))
    state(runtime, episode_id, people["authority"], "closure", {"housing": "met"}, at(2025, 3, 1))
    admin = signed_in(web)
    query = "?from_month=1&from_year=2025&to_month=3&to_year=2025"
    download = admin.get("/reports/outcomes.csv" + query)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="ecaf-outcomes-2025-01-to-2025-03.csv"'
    rows = rows_of(download.get_data(as_text=True))
    assert rows[0] == ["Headline outcome", "Code", "Chosen at an action plan", "Met at closure",
                       "Checked at six months", "Sustained at six months"]
    assert rows[9] == ["Secure housing", "housing", "1", "1", "0", "0"]
    assert rows[-1] == ["All outcomes", "", "1", "1", "0", "0"]
    assert len(rows) == 12
    assert audited(runtime, "report_downloaded")[0].detail["table"] == "outcomes"
    page = admin.get("/reports" + query)
    assert page.status_code == 200 and "Headline outcomes" in page.get_data(as_text=True)
    assert "/reports/outcomes.csv?" in page.get_data(as_text=True)
    # Who may see reports is unchanged: a practitioner may not.
    practitioner = signed_in(web, "lead", "leah")
    assert practitioner.get("/reports/outcomes.csv" + query).status_code in (403, 404)


def test_the_period_is_the_reports_own(runtime, people):
    assert "outcomes" in reports.TABLES and build(runtime, people, "outcomes", SPRING).rows
