"""What changed between two process versions: steps added, removed and changed (scripts, timers,
forms, flows), as a list, on the diagram and on the command line."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from app.engine.diff import version_diff
from app.engine.library import Bundle, deploy
from app.models import ProcessVersion

from .conftest import processes_copy
from .process_models import edit, signoff_model
from .web import browser, text_of


def deployed(runtime, directory) -> int:
    with runtime.db.session() as session:
        version, created = deploy(session, Bundle.from_directory(directory))
        assert created
        return version.version


def diff_of(runtime, old: int, new: int):
    with runtime.db.session() as session:
        found = {v.version: v for v in session.scalars(select(ProcessVersion))}
        return version_diff(found[old], found[new])


def by_step(found) -> dict:
    return {(c.kind, c.bpmn_id): c for c in found.changes}


def test_an_added_task_and_a_changed_script_and_flow(runtime, tmp_path):
    deployed(runtime, signoff_model(tmp_path))
    changes = by_step(diff_of(runtime, 1, 2))
    assert ("added", "signoff") in changes and changes[("added", "signoff")].name == "Sign off the assessment"
    script = changes[("changed", "open_episode")]
    assert script.what == ("script",)
    assert 'script, was: caf_time_limit = "P35D"' in script.details
    assert 'script, now: caf_time_limit = "P28D"' in script.details
    assert changes[("changed", "complete_assessment")].what == ("flow",)
    assert "leads to: Sign off the assessment (was: Store the submitted assessment)" in \
        changes[("changed", "complete_assessment")].details
    assert diff_of(runtime, 1, 2).markers == {
        "added": ["signoff"], "changed": ["complete_assessment", "open_episode", "submit_assessment"]}


def test_read_the_other_way_the_task_is_removed(runtime, tmp_path):
    deployed(runtime, signoff_model(tmp_path))
    found = diff_of(runtime, 2, 1)
    assert [c.bpmn_id for c in found.of_kind("removed")] == ["signoff"]
    assert not found.of_kind("added")


def test_a_timer_change_names_the_old_and_new_expression(runtime, tmp_path):
    directory = edit(processes_copy(tmp_path), ('<bpmn:timeDuration>"PT24H"</bpmn:timeDuration>',
                                                 '<bpmn:timeDuration>"PT12H"</bpmn:timeDuration>'))
    deployed(runtime, directory)
    [change] = diff_of(runtime, 1, 2).changes
    assert (change.kind, change.bpmn_id, change.what) == ("changed", "grace_period", ("timer",))
    assert change.details == ('timer: duration "PT24H" → duration "PT12H"',)


def test_a_form_whose_content_changed_is_a_changed_task(runtime, tmp_path):
    directory = processes_copy(tmp_path)
    edit(directory, ('"type": "object"', '"type": "object", "description": "Asked again in 2027"'),
         filename="forms/consent.schema.json")
    deployed(runtime, directory)
    found = diff_of(runtime, 1, 2)
    [change] = found.changes
    assert (change.kind, change.bpmn_id, change.what) == ("changed", "obtain_consent", ("form",))
    assert change.details == ("form: consent.schema.json changed",)
    assert found.changed_forms == {"obtain_consent"}


def test_a_renamed_step_is_changed_by_name_only(runtime, tmp_path):
    directory = edit(processes_copy(tmp_path), ('name="Mark as submitted"', 'name="Record the submission"'))
    deployed(runtime, directory)
    [change] = diff_of(runtime, 1, 2).changes
    assert (change.bpmn_id, change.what, change.details) == \
        ("mark_submitted", ("name",), ("name: Mark as submitted → Record the submission",))


def test_the_diff_page_lists_the_changes_and_marks_them_on_the_diagram(web, tmp_path):
    runtime = web["runtime"]
    deployed(runtime, signoff_model(tmp_path))
    admin = browser(web["app"])
    admin.sign_in("adam", web["secrets"]["admin"])
    page = admin.get("/processes/caf_episode/diff?from=1&to=2")
    assert page.status_code == 200
    html, text = page.get_data(as_text=True), text_of(page)
    assert "1 added, 3 changed, 0 removed" in text
    assert "Sign off the assessment" in text and "caf_time_limit = &#34;P28D&#34;" in html
    assert 'data-added="signoff"' in html
    assert 'data-changed="complete_assessment open_episode submit_assessment"' in html
    diagram = admin.get("/processes/caf_episode/diff/v2.bpmn")
    assert diagram.status_code == 200 and 'id="signoff"' in diagram.get_data(as_text=True)
    assert admin.get("/processes/caf_episode/diff/v9.bpmn").status_code == 404
    chosen_badly = admin.get("/processes/caf_episode/diff?from=1")
    assert chosen_badly.status_code == 400 and "Choose the two versions to compare" in text_of(chosen_badly)


def test_the_diff_command(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    deployed(runtime, signoff_model(tmp_path))
    result = CliRunner().invoke(main, ["processes", "diff", "1", "caf_episode:2"])
    assert result.exit_code == 0, result.output
    assert "caf_episode v1 -> caf_episode v2" in result.output
    assert "added    Sign off the assessment (signoff) in assessment" in result.output
    assert "changed  Open the episode (open_episode): script" in result.output
