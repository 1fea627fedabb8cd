"""Deploying process models: immutable versions, and bad models that deploy nothing."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import main
from app.engine.errors import ProcessInvalid
from app.engine.library import Bundle, deploy
from app.models import Episode, ProcessVersion

from .conftest import complete, processes_copy
from .journeys import CHECKLIST, start


def versions(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(ProcessVersion))


def try_deploy(runtime, directory):
    with runtime.db.session() as session:
        return deploy(session, Bundle.from_directory(directory))


def edited(tmp_path, old: str, new: str):
    directory = processes_copy(tmp_path)
    path = directory / "caf_episode.bpmn"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return directory


def test_the_same_content_deploys_once(runtime, tmp_path):
    version, created = try_deploy(runtime, processes_copy(tmp_path))
    assert (created, version.version) == (False, 1)
    assert versions(runtime) == 1


def test_a_new_version_leaves_running_episodes_on_theirs(runtime, people, tmp_path):
    episode_id = start(runtime, people)
    directory = edited(tmp_path, 'caf_time_limit = "P35D"', 'caf_time_limit = "P28D"')
    version, created = try_deploy(runtime, directory)
    assert created and version.version == 2
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).process_version.version == 1


@pytest.mark.parametrize("old, new, problem", [
    ("<bpmn:process ", "<bpmn:process <broken", "does not parse"),
    ('id="index/notify"', 'id="index/no_such_operator"', "no handler is registered for operator 'index/no_such_operator'"),
    ('<bpmn:timeDuration>"PT24H"</bpmn:timeDuration>', "<bpmn:timeDuration>PT24H</bpmn:timeDuration>", "must be quoted"),
    ('value="consent.schema.json"', 'value="missing.schema.json"', "the form file missing.schema.json is missing"),
    ("assessment_submitted = True</bpmn:script>", "assessment_submitted = = True</bpmn:script>", "syntax error"),
    ('name="Practitioner"', 'name="Janitor"', "the lane 'Janitor' is not a known role"),
])
def test_a_bad_model_names_the_problem_and_deploys_nothing(runtime, tmp_path, old, new, problem):
    directory = edited(tmp_path, old, new)
    with pytest.raises(ProcessInvalid) as raised:
        try_deploy(runtime, directory)
    assert problem in str(raised.value)
    assert versions(runtime) == 1


def test_the_deploy_command_reports_problems(runtime, tmp_path, monkeypatch):
    directory = edited(tmp_path, 'id="index/notify"', 'id="index/gone"')
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    result = CliRunner().invoke(main, ["processes", "deploy", str(directory)])
    assert result.exit_code == 1 and "index/gone" in result.output
    result = CliRunner().invoke(main, ["processes", "deploy"])
    assert result.exit_code == 0 and "already deployed" in result.output
    assert versions(runtime) == 1
