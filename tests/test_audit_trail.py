"""The audit trail: a hash chain sealed at commit, append-only in the database, verified by
`ecaf audit verify`, and its pages (an administrator's trail, who opened an episode)."""
from __future__ import annotations

import importlib.util
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from app import audit
from app.cli import main
from app.clock import now
from app.config import PROJECT_ROOT
from app.models import AuditEvent, Child, Episode, User
from app.models.audit import GENESIS
from tests.conftest import complete, other_authority
from tests.journeys import start, to_delivery, today
from tests.web import browser, give_credentials, text_of


def _write(runtime, count: int, **detail) -> None:
    """`count` rows, one commit each, as the application writes them."""
    for i in range(count):
        with runtime.db.session() as session:
            audit.record(session, "test_written", i=i, **detail)


def _chain(runtime) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()


def _tamper(runtime, sql: str, **params) -> None:
    """What a database administrator could do: lift the triggers, change the table, put them back."""
    with runtime.db.engine.begin() as conn:
        audit.remove_append_only(conn)
        conn.execute(text(sql), params)
        audit.install_append_only(conn)


# ---------------------------------------------------------------- the chain

def test_rows_are_chained_in_commit_order_and_verify_says_intact(runtime, people):
    _write(runtime, 3)
    with runtime.db.session() as session:  # two rows in one commit, recorded before other work is flushed
        audit.record(session, "test_written", i="first of two", nested={"b": [1, 2.5, None], "a": "é"})
        session.flush()
        audit.record(session, "test_written", i="second of two")
    with pytest.raises(RuntimeError), runtime.db.session() as session:
        audit.record(session, "test_rolled_back")
        session.flush()
        raise RuntimeError("the change failed, and its audit row goes with it")
    with runtime.db.session() as session:  # a savepoint that fails takes its rows with it, not the others
        audit.record(session, "test_kept")
        with pytest.raises(RuntimeError), session.begin_nested():
            audit.record(session, "test_rolled_back")
            session.flush()
            raise RuntimeError("a failed step")

    rows = _chain(runtime)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.row_hash for earlier, later in zip(rows, rows[1:]))
    assert "test_rolled_back" not in {r.action for r in rows}
    assert [r.detail["i"] for r in rows if r.action == "test_written"][-2:] == ["first of two", "second of two"]
    assert rows[-1].action == "test_kept"
    report = audit.verify_chain(runtime.db, batch_size=2)  # several batches
    assert report.intact and report.checked == len(rows) and report.last_seq == rows[-1].seq
    assert report.lines()[-1].startswith("audit trail intact")


def test_an_edited_row_is_found_at_exactly_its_seq(runtime, people):
    _write(runtime, 6)
    target = _chain(runtime)[3]
    _tamper(runtime, "UPDATE audit_event SET detail = :detail WHERE seq = :seq",
            detail='{"i": 99}', seq=target.seq)
    report = audit.verify_chain(runtime.db, batch_size=4)
    assert not report.intact
    assert (report.broken_seq, report.broken_id) == (target.seq, target.id)
    assert report.problem.startswith("row changed") and report.checked == target.seq


def test_a_rehashed_row_breaks_the_link_of_the_next(runtime, people):
    _write(runtime, 4)
    target = _chain(runtime)[1]
    _tamper(runtime, "UPDATE audit_event SET row_hash = :forged WHERE seq = :seq", forged="f" * 64, seq=target.seq)
    report = audit.verify_chain(runtime.db)
    assert report.broken_seq == target.seq and report.problem.startswith("row changed")


def test_a_deleted_row_and_a_row_outside_the_chain_are_found(runtime, people):
    _write(runtime, 5)
    rows = _chain(runtime)
    _tamper(runtime, "DELETE FROM audit_event WHERE seq = :seq", seq=rows[2].seq)
    report = audit.verify_chain(runtime.db)
    assert (report.broken_seq, report.broken_id) == (rows[3].seq, rows[3].id)
    assert report.problem.startswith(f"row missing: seq {rows[2].seq} not found")

    _tamper(runtime, "DELETE FROM audit_event")
    _write(runtime, 2)
    with runtime.db.engine.begin() as conn:  # inserting behind the application's back is allowed, but shows
        conn.execute(text("INSERT INTO audit_event (at, action) VALUES (:at, 'forged')"),
                     {"at": now().replace(tzinfo=None)})
    report = audit.verify_chain(runtime.db)
    assert report.checked == 2 and report.problem.startswith("row outside the chain")


def test_the_database_refuses_to_change_or_remove_audit_rows(runtime, people):
    _write(runtime, 2)
    with pytest.raises(DatabaseError, match="append-only"), runtime.db.session() as session:
        session.scalar(select(AuditEvent).where(AuditEvent.seq == 1)).detail = {"i": "rewritten"}
    with pytest.raises(DatabaseError, match="append-only"), runtime.db.session() as session:
        session.delete(session.scalar(select(AuditEvent).where(AuditEvent.seq == 2)))
    if runtime.db.is_postgresql:
        with pytest.raises(DatabaseError, match="append-only"), runtime.db.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_event"))
    assert audit.verify_chain(runtime.db).intact and len(_chain(runtime)) == 2


def test_writers_at_the_same_time_leave_an_unbroken_chain(runtime, people):
    def writer(n: int) -> None:
        for i in range(12):
            with runtime.db.session() as session:
                audit.record(session, "test_written", writer=n, i=i)
                session.execute(select(func.count()).select_from(User))  # overlap the transactions
                if i % 3 == 0:
                    audit.record(session, "test_written", writer=n, i=i, second=True)

    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(writer, range(5)))  # re-raises a writer's failure
    rows = _chain(runtime)
    assert len(rows) == 5 * 16 and [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert audit.verify_chain(runtime.db, batch_size=7).intact


def _backfill(runtime) -> None:
    spec = importlib.util.spec_from_file_location(
        "audit_chain_migration", PROJECT_ROOT / "migrations" / "versions" / "0004_audit_chain.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with runtime.db.engine.begin() as conn:
        audit.remove_append_only(conn)
        migration.backfill_chain(conn)
        audit.install_append_only(conn)


def test_the_migration_chains_rows_written_before_it(runtime, people):
    _write(runtime, 5)
    # As rows were before the chain (and before keyed links): migration 0004 seals them with plain SHA-256.
    _tamper(runtime, "UPDATE audit_event SET seq = NULL, prev_hash = NULL, row_hash = NULL, link_kind = NULL")
    _backfill(runtime)
    sealed = _chain(runtime)
    assert [r.detail["i"] for r in sealed] == list(range(5)), "numbered in id order"
    assert audit.verify_chain(runtime.db).intact

    _tamper(runtime, "INSERT INTO audit_event (at, action) VALUES (:at, 'unsealed')", at=now().replace(tzinfo=None))
    _backfill(runtime)  # as after a downgrade and upgrade: sealed rows stay as they were
    again = _chain(runtime)
    assert [r.row_hash for r in again[:5]] == [r.row_hash for r in sealed] and again[5].action == "unsealed"
    _write(runtime, 1)
    report = audit.verify_chain(runtime.db)
    assert report.intact and report.checked == 7, "new rows carry on from the backfilled chain"
    assert report.unkeyed_until == 6 and _chain(runtime)[6].link_kind == "hmac-sha256", "keyed from then on"


def test_verify_command_exits_0_when_intact_and_1_at_a_broken_link(runtime, people, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    monkeypatch.setenv("ECAF_AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    _write(runtime, 3)
    assert CliRunner().invoke(main, ["audit", "checkpoint"]).exit_code == 0  # records that checkpoints began
    intact = CliRunner().invoke(main, ["audit", "verify", "--batch-size", "3"])
    assert intact.exit_code == 0, intact.output
    assert "checked 4 rows" in intact.output and "audit trail intact" in intact.output
    target = _chain(runtime)[1]
    _tamper(runtime, "UPDATE audit_event SET action = 'nothing_to_see' WHERE seq = :seq", seq=target.seq)
    broken = CliRunner().invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"audit trail broken at seq {target.seq} (id {target.id}): row changed" in broken.output


# ---------------------------------------------------------------- the pages

def _signed_in(web, username: str, secret: str):
    client = browser(web["app"])
    client.sign_in(username, secret)
    return client


def _other_authority_admin(web) -> str:
    """An administrator of another authority, with credentials; returns their TOTP secret."""
    return give_credentials(web["runtime"], other_authority(web["runtime"])["otto"])


def _second_episode(web) -> int:
    runtime, people = web["runtime"], web["people"]
    with runtime.db.session() as session:
        child = Child(given_names="Robin", family_name="Second", date_of_birth=date(2016, 1, 2), postcode="TE1 2ND",
                      address="2 Test Road", home_authority_id=people["authority"], created_at=now())
        session.add(child)
        session.flush()
        child_id = child.id
    return runtime.engine.start_episode(child_id=child_id, originator_id=people["lead"]).episode_id


def _reference(runtime, episode_id: int) -> str:
    with runtime.db.session() as session:
        return session.get(Episode, episode_id).reference


def _rows(response) -> str:
    """The text of the page's table of audit rows ("" when there is none)."""
    html = response.get_data(as_text=True)
    table = re.search(r'<table class="govuk-table" data-testid="audit-rows">.*?</table>', html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", table.group(0))) if table else ""


def _audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_an_administrator_filters_the_trail_by_episode_and_by_user(web):
    runtime, people, secrets = web["runtime"], web["people"], web["secrets"]
    first, second = start(runtime, people), _second_episode(web)
    first_ref, second_ref = _reference(runtime, first), _reference(runtime, second)
    _signed_in(web, "olive", secrets["originator"]).get(f"/episodes/{first}")
    admin = _signed_in(web, "adam", secrets["admin"])

    everything = _rows(admin.get("/audit"))
    assert first_ref in everything and second_ref in everything and "Signed in" in everything

    by_reference = admin.get(f"/audit?episode={first_ref}")
    assert by_reference.status_code == 200
    rows = _rows(by_reference)
    assert first_ref in rows and "Episode started" in rows and "Viewed the CAF" in rows
    assert second_ref not in rows and "Signed in" not in rows
    by_number = _rows(admin.get(f"/audit?episode={second}"))
    assert second_ref in by_number and first_ref not in by_number
    assert "No rows match" in text_of(admin.get(f"/audit?episode=OTH-{first:06d}"))

    by_leah = _rows(admin.get("/audit?user=LEAH@testshire.test"))
    assert "Leah Lead" in by_leah and second_ref in by_leah
    assert "Olive Origin" not in by_leah and first_ref not in by_leah
    viewed_by_olive = _rows(admin.get("/audit?user=olive&action=episode viewed"))
    assert "Viewed the CAF" in viewed_by_olive and "Episode started" not in viewed_by_olive

    in_range = f"date_from-day={today().day}&date_from-month={today().month}&date_from-year={today().year}"
    assert first_ref in _rows(admin.get(f"/audit?{in_range}"))
    assert "No rows match" in text_of(admin.get("/audit?date_to-day=1&date_to-month=1&date_to-year=2001"))

    recorded = _audited(runtime, "audit_viewed")
    assert {"episode": first_ref} in [r.detail["filters"] for r in recorded]
    assert all(r.actor_id == people["admin"] for r in recorded)


def test_bad_filters_say_what_is_wrong_and_keep_what_was_typed(web):
    admin = _signed_in(web, "adam", web["secrets"]["admin"])
    answer = admin.get("/audit?user=nobody@nowhere.test&date_from-day=31&date_from-month=2&date_from-year=2026"
                       "&episode=not a reference")
    assert answer.status_code == 400
    html, page = answer.get_data(as_text=True), text_of(answer)
    assert "There is a problem" in page and "Error: Audit trail" in page
    assert "No account has that username or email address" in page
    assert "The date from must be a real date" in page
    assert "Enter a CAF reference, like TST-000012, or its number" in page
    assert 'value="nobody@nowhere.test"' in html and 'value="31"' in html and 'value="not a reference"' in html
    assert 'href="#date-from-day"' in html and 'id="date-from-day"' in html
    assert 'data-testid="audit-rows"' not in html
    backwards = admin.get("/audit?date_from-day=2&date_from-month=3&date_from-year=2026"
                          "&date_to-day=1&date_to-month=3&date_to-year=2026")
    assert backwards.status_code == 400 and "must be the same as or after the date from" in text_of(backwards)


def test_the_trail_pages_fifty_rows_at_a_time(web):
    runtime = web["runtime"]
    with runtime.db.session() as session:
        for i in range(60):
            audit.record(session, "test_written", actor_id=web["people"]["lead"], i=i)
    admin = _signed_in(web, "adam", web["secrets"]["admin"])
    first = admin.get("/audit?action=test_written").get_data(as_text=True)
    assert first.count("Test written") == 50 and 'rel="next"' in first and 'rel="prev"' not in first
    assert "action=test_written" in first.split('rel="next"')[0].rsplit("href=", 1)[1]
    second = admin.get("/audit?action=test_written&page=2").get_data(as_text=True)
    assert second.count("Test written") == 10 and 'rel="prev"' in second and 'rel="next"' not in second


def test_an_administrator_of_another_authority_sees_none_of_these_rows(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    reference = _reference(runtime, episode_id)
    olive = _signed_in(web, "olive", web["secrets"]["originator"])  # a code is accepted once: sign in once
    olive.get(f"/episodes/{episode_id}")
    otto = _signed_in(web, "otto", _other_authority_admin(web))
    rows = _rows(otto.get("/audit"))
    assert "Otto Other" in rows, "their own authority's rows are there"
    for theirs in (reference, "Olive Origin", "Adam Admin", "Leah Lead"):
        assert theirs not in rows
    assert "No rows match" in text_of(otto.get(f"/audit?episode={reference}"))
    assert "No rows match" in text_of(otto.get("/audit?user=olive"))
    assert otto.get(f"/episodes/{episode_id}/audit").status_code == 404
    assert olive.get("/audit").status_code == 403, "administrators only"


def test_the_lead_professional_sees_who_opened_the_episode(web):
    runtime, people, secrets = web["runtime"], web["people"], web["secrets"]
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    olive = _signed_in(web, "olive", secrets["originator"])
    assert olive.get(f"/episodes/{episode_id}").status_code == 200
    assert olive.get(f"/episodes/{episode_id}/print").status_code == 200

    lead = _signed_in(web, "leah", secrets["lead"])
    answer = lead.get(f"/episodes/{episode_id}/audit")
    assert answer.status_code == 200
    assert "Who opened this CAF" in text_of(answer)
    rows = _rows(answer)
    assert "Olive Origin" in rows and "Test Primary" in rows and "Viewed the CAF" in rows and "Printed it" in rows
    assert "Task completed" not in rows, "a practitioner sees who opened it, not every row"
    assert len(_audited(runtime, "episode_audit_viewed")) == 1

    assert olive.get(f"/episodes/{episode_id}/audit").status_code == 404, "no longer the one responsible"
    denied = _audited(runtime, "access_denied")
    assert denied and denied[-1].actor_id == people["originator"] and "audit" in denied[-1].detail["asked_for"]

    answer = _signed_in(web, "adam", secrets["admin"]).get(f"/episodes/{episode_id}/audit")
    assert "Audit trail" in text_of(answer)
    assert "Task completed" in _rows(answer) and "Viewed the CAF" in _rows(answer)
    assert audit.verify_chain(runtime.db).intact
