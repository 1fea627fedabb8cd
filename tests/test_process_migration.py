"""Moving open episodes to a newer process version: the dry run, the migration, refusals, failures."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.clock import as_utc, now
from app.engine.library import Bundle, deploy
from app.jobs.sweep import sweep_timers
from app.models import AuditEvent, Child, Episode, HumanTask, ProcessMigration, User
from app.services import process_migrations as migrations

from .conftest import VETTED, complete, processes_copy, ready_task
from .journeys import CHECKLIST, CONSENT, assessment
from .process_models import edit, signoff_model

LIMIT_35, LIMIT_28 = timedelta(days=35), timedelta(days=28)


# ---------------------------------------------------------------- helpers

def owner(runtime, people) -> int:
    with runtime.db.session() as session:
        user = User(username="owen", email="owen@testshire.test", full_name="Owen Owner", role="process_owner",
                    created_at=now(), **VETTED)
        session.add(user)
        session.flush()
        return user.id


def child(runtime, people, given: str) -> int:
    """Another child, distinct enough that the check for an existing CAF finds nobody."""
    with runtime.db.session() as session:
        count = session.query(Child).count()
        record = Child(given_names=given, family_name=f"{given}son", date_of_birth=date(2010 + count, 1 + count, 2),
                       postcode=f"ZZ{count} 9ZZ", address=f"{count} Other Road", home_authority_id=people["authority"],
                       created_at=now())
        session.add(record)
        session.flush()
        return record.id


def in_assessment(runtime, people, child_id: int) -> int:
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    return episode_id


def in_delivery(runtime, people, child_id: int) -> int:
    episode_id = in_assessment(runtime, people, child_id)
    complete(runtime, episode_id, "complete_assessment", assessment())
    return episode_id


def episode(runtime, episode_id: int) -> Episode:
    with runtime.db.session() as session:
        found = session.get(Episode, episode_id)
        found.process_version  # loaded for use after the session
        return found


def deploy_signoff(runtime, tmp_path, by_id: int | None = None):
    with runtime.db.session() as session:
        version, created = deploy(session, Bundle.from_directory(signoff_model(tmp_path)), deployed_by_id=by_id,
                                  change_note="28 days; the assessment is signed off")
        assert created
        return version.version


def audited(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def results(runtime, batch: str) -> dict[int, ProcessMigration]:
    with runtime.db.session() as session:
        return {row.episode_id: row for row in session.scalars(
            select(ProcessMigration).where(ProcessMigration.batch == batch))}


# ---------------------------------------------------------------- the issue's journey

def test_a_28_day_limit_and_a_sign_off_task_reach_new_and_migrated_episodes(runtime, people, tmp_path):
    owner_id = owner(runtime, people)
    started = now()
    assessing = in_assessment(runtime, people, people["child"])
    delivering = in_delivery(runtime, people, child(runtime, people, "Dana"))
    before_refusal = episode(runtime, delivering).state

    with time_machine.travel(started + timedelta(days=3), tick=False):
        assert deploy_signoff(runtime, tmp_path, owner_id) == 2
        fresh = in_assessment(runtime, people, child(runtime, people, "Fern"))
        fresh_episode = episode(runtime, fresh)
        assert fresh_episode.process_version.version == 2
        assert fresh_episode.next_timer_at == as_utc(fresh_episode.started_at) + LIMIT_28

        plan = migrations.dry_run(runtime, "caf_episode", 1, 2)
        reports = {r.episode_id: r for r in plan.episodes}
        assert set(reports) == {assessing, delivering}
        assert reports[assessing].migratable, reports[assessing].check.reasons
        assert any("35-day limit" in line and "keeps its due time" in line for line in reports[assessing].effects())
        # In UK time, as an administrator reads every other time ("... at 4:05pm"), never UTC.
        (kept,) = [line for line in reports[assessing].effects() if "35-day limit" in line]
        assert re.search(r"keeps its due time \(\d+ \w+ \d{4} at (\d+(:\d\d)?[ap]m|midday|midnight)\)", kept), kept
        assert "UTC" not in " ".join(reports[assessing].effects())
        assert any("Open the episode" in note and "keeps what it set" in note for note in reports[assessing].check.notes)
        assert not reports[delivering].migratable
        assert any("Complete and submit the assessment" in reason and "already run" in reason
                   for reason in reports[delivering].check.reasons)
        assert episode(runtime, assessing).process_version.version == 1  # a dry run changes nothing

        result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=[assessing, delivering],
                                note="Sign-off before submission", by_user_id=owner_id)
    assert (result.migrated, result.refused, result.failed) == ([assessing], [delivering], [])

    moved, refused = episode(runtime, assessing), episode(runtime, delivering)
    assert moved.process_version.version == 2
    assert moved.next_timer_at == as_utc(moved.started_at) + LIMIT_35  # it started under the 35-day rule
    assert refused.process_version.version == 1 and refused.state == before_refusal
    recorded = results(runtime, result.batch)
    assert recorded[assessing].status == "migrated" and recorded[delivering].status == "refused"
    assert recorded[assessing].change_note == "Sign-off before submission"
    assert any("Complete and submit the assessment" in r for r in recorded[delivering].reasons)
    assert [e.episode_id for e in audited(runtime, "episode_migrated")] == [assessing]
    assert [e.episode_id for e in audited(runtime, "episode_migration_refused")] == [delivering]
    run_audit = audited(runtime, "process_migration_run")
    assert len(run_audit) == 1 and run_audit[0].detail["note"] == "Sign-off before submission"

    complete(runtime, assessing, "complete_assessment", assessment())
    complete(runtime, assessing, "signoff", {"signed_off": True})
    assert ready_task(runtime, assessing, "tac_meeting")


def test_a_waiting_grace_period_keeps_its_due_time(runtime, people, tmp_path):
    """A 24-hour duration timer would restart on migration; it keeps its original due time."""
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    started = as_utc(episode(runtime, episode_id).started_at)
    with time_machine.travel(started + LIMIT_35 + timedelta(minutes=1), tick=False):
        assert sweep_timers(runtime).woken == 1  # the warning; the 24 hours' notice now waits
    grace_due = episode(runtime, episode_id).next_timer_at
    assert grace_due == started + LIMIT_35 + timedelta(minutes=1, hours=24)
    with time_machine.travel(started + LIMIT_35 + timedelta(hours=12), tick=False):
        deploy_signoff(runtime, tmp_path)
        plan = migrations.dry_run(runtime, "caf_episode", 1, 2)
        assert any("24 hours' notice" in line and "keeps its due time" in line for line in plan.episodes[0].effects())
        result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=None, note="Sign-off",
                                by_user_id=owner_id)
    assert result.migrated == [episode_id]
    assert episode(runtime, episode_id).next_timer_at == grace_due


def test_a_ready_task_keeps_its_draft_and_its_row(runtime, people, tmp_path):
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    task = ready_task(runtime, episode_id, "complete_assessment")
    runtime.engine.save_draft(episode_id, task.id, {"section_k_voice": {"child_comments": "draft"}}, task.assigned_user_id)
    deploy_signoff(runtime, tmp_path)
    plan = migrations.dry_run(runtime, "caf_episode", 1, 2)
    assert plan.episodes[0].drafts_lost == []
    migrations.run(runtime, "caf_episode", 1, 2, episode_ids=[episode_id], note="Sign-off", by_user_id=owner_id)
    after = ready_task(runtime, episode_id, "complete_assessment")
    assert after.id == task.id and after.draft == {"section_k_voice": {"child_comments": "draft"}}


def test_a_failed_migration_leaves_the_episode_exactly_as_it_was(runtime, people, tmp_path, monkeypatch):
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    deploy_signoff(runtime, tmp_path)
    before = episode(runtime, episode_id)
    with runtime.db.session() as session:
        tasks_before = [(t.id, t.status, t.task_id) for t in session.scalars(
            select(HumanTask).where(HumanTask.episode_id == episode_id).order_by(HumanTask.id))]

    def broken(*args, **kwargs):
        raise RuntimeError("the projection could not be written")

    monkeypatch.setattr("app.engine.migration.sync_human_tasks", broken)
    result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=[episode_id], note="Sign-off",
                            by_user_id=owner_id)
    assert result.failed == [episode_id]
    after = episode(runtime, episode_id)
    assert (after.state, after.process_version_id, after.lock_version, after.next_timer_at) == \
        (before.state, before.process_version_id, before.lock_version, before.next_timer_at)
    with runtime.db.session() as session:
        assert tasks_before == [(t.id, t.status, t.task_id) for t in session.scalars(
            select(HumanTask).where(HumanTask.episode_id == episode_id).order_by(HumanTask.id))]
    row = results(runtime, result.batch)[episode_id]
    assert row.status == "failed" and "projection could not be written" in row.reasons[0]
    assert [e.episode_id for e in audited(runtime, "episode_migration_failed")] == [episode_id]


@pytest.mark.parametrize("source, target, problem", [
    (2, 1, "must be newer"), (1, 1, "must be newer"), (1, 9, "has no version 9")])
def test_a_target_that_is_not_newer_migrates_nothing(runtime, people, tmp_path, source, target, problem):
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    deploy_signoff(runtime, tmp_path)
    with pytest.raises(migrations.MigrationRefused) as refused:
        migrations.run(runtime, "caf_episode", source, target, episode_ids=None, note="x", by_user_id=owner_id)
    assert problem in str(refused.value)
    assert episode(runtime, episode_id).process_version.version == 1
    assert not audited(runtime, "process_migration_run")


def test_only_process_owners_migrate_and_a_note_is_required(runtime, people, tmp_path):
    episode_id = in_assessment(runtime, people, people["child"])
    deploy_signoff(runtime, tmp_path)
    with pytest.raises(migrations.MigrationRefused, match="Only process owners"):
        migrations.run(runtime, "caf_episode", 1, 2, episode_ids=None, note="x", by_user_id=people["admin"])
    with pytest.raises(migrations.MigrationRefused, match="change note"):
        migrations.run(runtime, "caf_episode", 1, 2, episode_ids=None, note=" ", by_user_id=owner(runtime, people))
    assert episode(runtime, episode_id).process_version.version == 1


# ---------------------------------------------------------------- the pages

def signed_in(web, user_id: int, username: str):
    from .web import browser, give_credentials

    client = browser(web["app"])
    client.sign_in(username, give_credentials(web["runtime"], user_id))
    return client


def post_form(client, path: str, pairs: list[tuple[str, str]], token_from: str):
    """A form with repeated fields (ticked checkboxes), posted with the page's CSRF token."""
    from werkzeug.datastructures import MultiDict

    from .web import csrf_token

    token = csrf_token(client.get(token_from).get_data(as_text=True))
    return client.client.post(path, data=MultiDict([*pairs, ("csrf_token", token)]))


def test_the_owner_checks_the_episodes_then_moves_the_chosen_ones(web, tmp_path):
    from .web import text_of

    runtime, people = web["runtime"], web["people"]
    owner_id = owner(runtime, people)
    assessing = in_assessment(runtime, people, people["child"])
    delivering = in_delivery(runtime, people, child(runtime, people, "Dana"))
    deploy_signoff(runtime, tmp_path, owner_id)
    client = signed_in(web, owner_id, "owen")

    page = client.get("/processes/caf_episode/migrate?from=1&to=2")
    assert page.status_code == 200
    text = text_of(page)
    assert "2 open episodes: 1 can move, 1 cannot" in text
    assert "'35-day limit' keeps its due time" in text and "Complete and submit the assessment" in text

    missing_note = post_form(client, "/processes/caf_episode/migrate",
                             [("from", "1"), ("to", "2"), ("scope", "chosen"), ("episode", str(assessing)),
                              ("note", "")], "/processes/caf_episode/migrate?from=1&to=2")
    assert missing_note.status_code == 400
    html = missing_note.get_data(as_text=True)
    assert "Enter a change note" in html and f'value="{assessing}" checked' in html and 'value="chosen" checked' in html
    assert episode(runtime, assessing).process_version.version == 1

    done = post_form(client, "/processes/caf_episode/migrate",
                     [("from", "1"), ("to", "2"), ("scope", "chosen"), ("episode", str(assessing)),
                      ("note", "Sign-off before submission")], "/processes/caf_episode/migrate?from=1&to=2")
    assert done.status_code == 302 and "/processes/migrations/" in done.location
    results_page = text_of(client.get(done.location))
    assert "1 migrated, 0 refused, 0 failed" in results_page and "Sign-off before submission" in results_page
    assert episode(runtime, assessing).process_version.version == 2
    assert episode(runtime, delivering).process_version.version == 1


def test_nothing_is_chosen_for_the_owner_and_the_answers_are_checked_before_the_move(web, tmp_path):
    from .web import text_of

    runtime, people = web["runtime"], web["people"]
    owner_id = owner(runtime, people)
    assessing = in_assessment(runtime, people, people["child"])
    deploy_signoff(runtime, tmp_path, owner_id)
    client = signed_in(web, owner_id, "owen")
    plan_path = "/processes/caf_episode/migrate?from=1&to=2"

    page = client.get(plan_path).get_data(as_text=True)
    assert 'value="all" checked' not in page and 'value="chosen" checked' not in page
    assert "Move the episodes to v2" not in page, "the plan page only continues to the check"

    no_scope = post_form(client, "/processes/caf_episode/migrate/check",
                         [("from", "1"), ("to", "2"), ("note", "Sign-off")], plan_path)
    assert no_scope.status_code == 400 and "Choose which episodes to move" in text_of(no_scope)
    assert "Sign-off</textarea>" in no_scope.get_data(as_text=True), "the note typed is kept"
    no_scope_run = post_form(client, "/processes/caf_episode/migrate",
                             [("from", "1"), ("to", "2"), ("note", "Sign-off")], plan_path)
    assert no_scope_run.status_code == 400 and episode(runtime, assessing).process_version.version == 1

    check = post_form(client, "/processes/caf_episode/migrate/check",
                      [("from", "1"), ("to", "2"), ("scope", "all"), ("note", "Sign-off before submission")],
                      plan_path)
    html = check.get_data(as_text=True)
    assert check.status_code == 200 and "Check before you move 1 episode to v2" in text_of(check)
    assert f'data-episode="{assessing}"' in html and "All that can move" in text_of(check)
    assert "Sign-off before submission" in text_of(check) and "Move the episodes to v2" in html
    assert "scope=all" in html and "Change" in text_of(check), "each answer can be changed"
    assert episode(runtime, assessing).process_version.version == 1, "checking moves nothing"

    changing = client.get(f"{plan_path}&scope=all&note=Sign-off+before+submission").get_data(as_text=True)
    assert 'value="all" checked' in changing and "Sign-off before submission</textarea>" in changing

    done = post_form(client, "/processes/caf_episode/migrate",
                     [("from", "1"), ("to", "2"), ("scope", "all"), ("note", "Sign-off before submission")],
                     plan_path)
    assert done.status_code == 302 and episode(runtime, assessing).process_version.version == 2


def test_administrators_read_the_report_but_cannot_migrate(web, tmp_path):
    from .web import browser

    runtime, people = web["runtime"], web["people"]
    episode_id = in_assessment(runtime, people, people["child"])
    deploy_signoff(runtime, tmp_path)
    admin = browser(web["app"])
    admin.sign_in("adam", web["secrets"]["admin"])
    page = admin.get("/processes/caf_episode/migrate?from=1&to=2")
    assert page.status_code == 200 and "Only process owners move episodes" in page.get_data(as_text=True)
    assert admin.get("/processes/caf_episode/diff?from=1&to=2").status_code == 200
    refused = admin.post("/processes/caf_episode/migrate", {"from": "1", "to": "2", "scope": "all", "note": "x"},
                         token_from="/processes/caf_episode/diff?from=1&to=2")
    assert refused.status_code == 403
    assert episode(runtime, episode_id).process_version.version == 1
    practitioner = browser(web["app"])
    practitioner.sign_in("olive", web["secrets"]["originator"])
    assert practitioner.get("/processes/caf_episode/migrate?from=1&to=2").status_code == 403


def test_a_target_that_is_not_newer_is_a_clear_error_on_the_page(web, tmp_path):
    from .web import text_of

    runtime, people = web["runtime"], web["people"]
    owner_id = owner(runtime, people)
    deploy_signoff(runtime, tmp_path)
    client = signed_in(web, owner_id, "owen")
    page = client.get("/processes/caf_episode/migrate?from=2&to=1")
    assert page.status_code == 400 and "must be newer" in text_of(page)
    assert client.get("/processes/no_such_process/migrate?from=1&to=2").status_code == 404


# ---------------------------------------------------------------- the command line

def test_the_migrate_command_reports_first_then_moves_the_chosen_episodes(runtime, people, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from app.cli import main

    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    owner(runtime, people)
    assessing = in_assessment(runtime, people, people["child"])
    delivering = in_delivery(runtime, people, child(runtime, people, "Dana"))
    deploy_signoff(runtime, tmp_path)
    cli = CliRunner()

    dry = cli.invoke(main, ["processes", "migrate", "--from", "1", "--to", "2", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = {line.split()[0]: line for line in dry.output.splitlines()}
    assert "can move" in lines[f"TST-{assessing:06d}"] and "keeps its due time" in lines[f"TST-{assessing:06d}"]
    assert "cannot" in lines[f"TST-{delivering:06d}"]
    assert "2 open episodes, 1 can move, 1 cannot (dry run: nothing changed)" in dry.output
    assert episode(runtime, assessing).process_version.version == 1

    not_owner = cli.invoke(main, ["processes", "migrate", "--from", "1", "--to", "2", "--note", "x", "--by", "adam"])
    assert not_owner.exit_code == 1 and "not a process owner" in not_owner.output
    no_note = cli.invoke(main, ["processes", "migrate", "--from", "1", "--to", "2", "--by", "owen"])
    assert no_note.exit_code == 1 and "Enter a change note" in no_note.output
    backwards = cli.invoke(main, ["processes", "migrate", "--from", "2", "--to", "1", "--note", "x", "--by", "owen"])
    assert backwards.exit_code == 1 and "must be newer" in backwards.output
    assert episode(runtime, assessing).process_version.version == 1

    done = cli.invoke(main, ["processes", "migrate", "--from", "caf_episode:1", "--to", "2", "--episode",
                             str(assessing), "--note", "Sign-off", "--by", "owen@testshire.test"])
    assert done.exit_code == 0, done.output
    assert "1 migrated, 0 refused, 0 failed" in done.output
    assert episode(runtime, assessing).process_version.version == 2
    assert episode(runtime, delivering).process_version.version == 1


def test_an_episode_whose_subprocess_is_missing_from_the_target_is_refused(runtime, people, tmp_path):
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    before = episode(runtime, episode_id).state
    directory = processes_copy(tmp_path)
    path = directory / "caf_episode.bpmn"
    assert '"preparation"' in path.read_text()
    path.write_text(path.read_text().replace('"preparation"', '"getting_ready"'))  # the subprocess's new id
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(directory))
    plan = migrations.dry_run(runtime, "caf_episode", 1, 2)
    [report] = plan.episodes
    assert "its subprocess 'preparation' is missing from caf_episode v2" in report.check.reasons
    result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=[episode_id], note="Renamed",
                            by_user_id=owner_id)
    assert result.refused == [episode_id]
    assert episode(runtime, episode_id).state == before


def test_a_step_removed_further_on_is_predicted_again_from_the_new_flows(runtime, people, tmp_path):
    """The episode has not reached "Episode deleted"; version 2 removes it. SpiffWorkflow leaves
    the predicted task behind; it is predicted again, so the moved state loads and runs on."""
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    directory = processes_copy(tmp_path)
    path = directory / "caf_episode.bpmn"
    text = path.read_text()
    start = text.index('<bpmn:endEvent id="end_deleted"')
    text = text[:start] + text[text.index("</bpmn:endEvent>", start) + len("</bpmn:endEvent>"):]
    path.write_text(text)
    edit(directory, ("<bpmn:flowNodeRef>end_deleted</bpmn:flowNodeRef>", ""),
         ('sourceRef="gw_submitted" targetRef="end_deleted"', 'sourceRef="gw_submitted" targetRef="end_closed"'),
         ('<bpmn:endEvent id="end_closed" name="Episode closed">',
          '<bpmn:endEvent id="end_closed" name="Episode closed">\n'
          '      <bpmn:incoming>flow_gw_submitted_to_end_deleted</bpmn:incoming>'))
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(directory))
    [report] = migrations.dry_run(runtime, "caf_episode", 1, 2).episodes
    assert report.migratable, report.check.reasons
    result = migrations.run(runtime, "caf_episode", 1, 2, episode_ids=None, note="No separate deletion end",
                            by_user_id=owner_id)
    assert result.migrated == [episode_id]
    complete(runtime, episode_id, "complete_assessment", assessment())
    assert ready_task(runtime, episode_id, "tac_meeting")


def test_a_draft_on_a_task_whose_form_changed_is_kept_and_flagged(runtime, people, tmp_path):
    owner_id = owner(runtime, people)
    episode_id = in_assessment(runtime, people, people["child"])
    task = ready_task(runtime, episode_id, "complete_assessment")
    runtime.engine.save_draft(episode_id, task.id, {"section_k_voice": {"child_comments": "draft"}},
                              task.assigned_user_id)
    directory = edit(processes_copy(tmp_path), ('"type": "object"', '"type": "object", "description": "2027 edition"'),
                     filename="forms/assessment.schema.json")
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(directory))
    [report] = migrations.dry_run(runtime, "caf_episode", 1, 2).episodes
    assert "the draft of 'Complete and submit the assessment' is kept, but its form changed" in report.effects()
    migrations.run(runtime, "caf_episode", 1, 2, episode_ids=[episode_id], note="New form", by_user_id=owner_id)
    assert ready_task(runtime, episode_id, "complete_assessment").draft == {"section_k_voice": {"child_comments": "draft"}}
    complete(runtime, episode_id, "complete_assessment", assessment())
    assert ready_task(runtime, episode_id, "tac_meeting")
