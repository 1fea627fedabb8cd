"""Deploying process models: immutable versions, and bad models that deploy nothing."""
from __future__ import annotations

import getpass

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import main
from app.clock import now
from app.engine.errors import ProcessInvalid
from app.engine.library import Bundle, deploy
from app.models import AuditEvent, Episode, ProcessVersion, User

from .conftest import VETTED, complete, processes_copy
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


CLOSURE_END = '<bpmn:endEvent id="closure_end"'
REFUSAL_OPERATOR = """<spiffworkflow:serviceTaskOperator id="consent/record_refusal">
            <spiffworkflow:parameters>
              <spiffworkflow:parameter id="submission" type="any" value='obtain_consent["submission"]'/>
            </spiffworkflow:parameters>
          </spiffworkflow:serviceTaskOperator>"""
FINAL_SUMMARY_FORMS = """<spiffworkflow:properties>
            <spiffworkflow:property name="formJsonSchemaFilename" value="final_summary.schema.json"/>
            <spiffworkflow:property name="formUiSchemaFilename" value="final_summary.uischema.json"/>
          </spiffworkflow:properties>"""


def _retag(text: str, element_id: str, old_tag: str, new_tag: str) -> str:
    """The element with this id, and its closing tag, become another kind of element."""
    start = text.index(f'<bpmn:{old_tag} id="{element_id}"')
    end = text.index(f"</bpmn:{old_tag}>", start)
    inner = text[start:end].replace(f"<bpmn:{old_tag} ", f"<bpmn:{new_tag} ", 1)
    return text[:start] + inner + f"</bpmn:{new_tag}>" + text[end + len(f"</bpmn:{old_tag}>"):]


# Each model has exactly one problem; the message names the element's id and name.
BAD_MODELS = {
    "malformed XML": ([("<bpmn:process ", "<bpmn:process <broken")], "caf_episode.bpmn line 9: the XML does not parse"),
    "not BPMN": ([("caf_episode.bpmn", None, "<html><body>A web page</body></html>")],
                 "caf_episode.bpmn: this is not a BPMN 2.0 document"),
    "entities": ([('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<!DOCTYPE d [<!ENTITY lol "lol">]>')], "caf_episode.bpmn: a DOCTYPE is not allowed in a BPMN file"),
    "schema": ([('<bpmn:endEvent id="end_closed"', '<bpmn:endEvent colour="red" id="end_closed"')],
               "in 'end_closed' (Episode closed): the attribute 'colour' is not allowed (on bpmn:endEvent, BPMN schema)"),
    "complex gateway": ([("retag", "gw_concern_join", "exclusiveGateway", "complexGateway")],
                        "'gw_concern_join': complex gateways are not supported"),
    "transaction": ([("retag", "closure", "subProcess", "transaction")],
                    "'closure' (Closure): transactions are not supported"),
    "compensation": ([("<bpmn:incoming>flow_gw_outcomes_met_to_closure_end</bpmn:incoming>",
                       "<bpmn:incoming>flow_gw_outcomes_met_to_closure_end</bpmn:incoming>"
                       '<bpmn:compensateEventDefinition id="closure_compensation"/>')],
                     "'closure_end' (Closure ends): compensation events are not supported"),
    "another tool's extension": ([('<bpmn:userTask id="obtain_consent"', '<bpmn:userTask xmlns:camunda='
                                   '"http://camunda.org/schema/1.0/bpmn" camunda:formKey="consent" id="obtain_consent"')],
                                 "'obtain_consent' (Obtain consent): uses camunda:formKey from another modelling tool"),
    "dead end": ([('<bpmn:userTask id="final_summary"', '<bpmn:boundaryEvent id="stray_reminder" name="Stray reminder" '
                   'attachedToRef="final_summary" cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeDuration>'
                   '"P7D"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>\n      '
                   '<bpmn:userTask id="final_summary"')],
                 "'stray_reminder' (Stray reminder): a dead end: nothing follows it"),
    "unreachable": ([(CLOSURE_END, '<bpmn:scriptTask id="orphan" name="Orphan step"><bpmn:outgoing>flow_orphan'
                      '</bpmn:outgoing><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>\n      <bpmn:sequenceFlow '
                      'id="flow_orphan" sourceRef="orphan" targetRef="closure_end"/>\n      ' + CLOSURE_END)],
                    "'orphan' (Orphan step): cannot be reached: no path leads to it from the start event"),
    "script syntax": ([("assessment_submitted = True</bpmn:script>", "assessment_submitted = = True</bpmn:script>")],
                      "'mark_submitted' (Mark as submitted), line 1: syntax error: invalid syntax"),
    "unquoted timer": ([('<bpmn:timeDuration>"PT24H"</bpmn:timeDuration>', "<bpmn:timeDuration>PT24H</bpmn:timeDuration>")],
                       "'grace_period' (24 hours' notice): the timer 'PT24H' must be quoted"),
    "timer not ISO 8601": ([('<bpmn:timeDuration>"PT24H"</bpmn:timeDuration>',
                             '<bpmn:timeDuration>"PT24X"</bpmn:timeDuration>')],
                           "'grace_period' (24 hours' notice): the timer duration 'PT24X' is not ISO 8601"),
    "timer date without offset": ([("<bpmn:timeDate>caf_due_at</bpmn:timeDate>",
                                    '<bpmn:timeDate>"2030-01-01T09:00:00"</bpmn:timeDate>')],
                                  "'caf_deadline' (35-day limit): the timer date '2030-01-01T09:00:00' needs a UTC offset"),
    "missing form": ([('value="consent.schema.json"', 'value="missing.schema.json"')],
                     "'obtain_consent' (Obtain consent): the form file missing.schema.json is missing"),
    "no form": ([(FINAL_SUMMARY_FORMS, "")],
                "'final_summary' (Write the final summary): the user task has no form"),
    "form not JSON": ([("forms/consent.schema.json", None, "{not json")],
                      "'obtain_consent' (Obtain consent): the form file consent.schema.json is not valid JSON"),
    "form not JSON Schema": ([("forms/consent.schema.json", '"type": "object"', '"type": "thing"')],
                             "'obtain_consent' (Obtain consent): the form file consent.schema.json is not a valid JSON "
                             "Schema"),
    "unknown operator": ([('id="consent/record_refusal"', 'id="consent/no_such_operator"')],
                         "'record_refusal' (Record the refusal): no handler is registered for operator "
                         "'consent/no_such_operator'"),
    "service task without operator": ([(REFUSAL_OPERATOR, "")],
                                      "'record_refusal' (Record the refusal): A Service Task must have an operator"),
    "unknown lane": ([('name="Practitioner"', 'name="Janitor"')], "the lane 'Janitor' is not a known role"),
    "huge file": ([("caf_episode.bpmn", "</bpmn:definitions>", "<!--" + "x" * (6 * 1024 * 1024) + "-->"
                    "</bpmn:definitions>")],
                  "caf_episode.bpmn: the file is 6.1 MB, larger than the 5 MB limit"),
}


def _apply(directory, edits) -> None:
    for edit in edits:
        if edit[0] == "retag":
            path = directory / "caf_episode.bpmn"
            path.write_text(_retag(path.read_text(), *edit[1:]))
            continue
        if len(edit) == 2:
            edit = ("caf_episode.bpmn", *edit)
        filename, old, new = edit
        path = directory / filename
        text = path.read_text()
        if old is None:
            path.write_text(new)
            continue
        assert old in text, f"{filename} no longer contains {old!r}"
        path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_each_validation_problem_is_named_and_nothing_is_deployed(runtime, tmp_path, case):
    edits, problem = BAD_MODELS[case]
    directory = processes_copy(tmp_path)
    _apply(directory, edits)
    with pytest.raises(ProcessInvalid) as raised:
        try_deploy(runtime, directory)
    problems = [p for p in raised.value.problems]
    assert len(problems) == 1 and problem in problems[0], problems
    assert versions(runtime) == 1


def test_the_deploy_command_reports_problems(runtime, tmp_path, monkeypatch):
    directory = edited(tmp_path, 'id="index/notify"', 'id="index/gone"')
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    result = CliRunner().invoke(main, ["processes", "deploy", str(directory)])
    assert result.exit_code == 1 and "index/gone" in result.output
    result = CliRunner().invoke(main, ["processes", "deploy"])
    assert result.exit_code == 0 and "already deployed" in result.output
    assert versions(runtime) == 1


def test_export_then_deploy_gives_the_same_version(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    target = tmp_path / "kept-in-git"
    result = CliRunner().invoke(main, ["processes", "export", "caf_episode:1", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "caf_episode.bpmn").exists() and (target / "forms" / "consent.schema.json").exists()
    result = CliRunner().invoke(main, ["processes", "deploy", str(target)])
    assert result.exit_code == 0 and "caf_episode v1 is already deployed" in result.output
    assert versions(runtime) == 1

    again = CliRunner().invoke(main, ["processes", "export", "1", str(target)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    (target / "forms" / "stray.schema.json").write_text("{}")
    again = CliRunner().invoke(main, ["processes", "export", "v1", str(target), "--overwrite"])
    assert again.exit_code == 0 and not (target / "forms" / "stray.schema.json").exists()
    assert CliRunner().invoke(main, ["processes", "export", "7", str(tmp_path / "x")]).exit_code == 1


def test_the_list_shows_each_version_with_its_hash_and_open_episodes(runtime, people, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    start(runtime, people)
    directory = edited(tmp_path, 'caf_time_limit = "P35D"', 'caf_time_limit = "P28D"')
    result = CliRunner().invoke(main, ["processes", "deploy", str(directory), "--note", "28 days"])
    assert result.exit_code == 0 and "deployed caf_episode v2" in result.output
    with runtime.db.session() as session:
        hashes = {v.version: v.content_hash[:12] for v in session.scalars(select(ProcessVersion))}
    lines = CliRunner().invoke(main, ["processes", "list"]).output.splitlines()
    assert lines[0].startswith("caf_episode v1") and hashes[1] in lines[0] and "1 open" in lines[0]
    assert lines[1].startswith("caf_episode v2") and hashes[2] in lines[1] and "0 open" in lines[1]
    assert lines[1].endswith("28 days")


def test_the_deploy_command_records_the_operator_who_ran_it_and_for_which_owner(runtime, people, tmp_path,
                                                                               monkeypatch):
    with runtime.db.session() as session:
        session.add(User(username="owen", email="owen@testshire.test", full_name="Owen Owner", role="process_owner",
                         created_at=now(), **VETTED))
        session.flush()
        owner_id = session.scalar(select(User.id).where(User.username == "owen"))
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    directory = edited(tmp_path, 'caf_time_limit = "P35D"', 'caf_time_limit = "P28D"')
    result = CliRunner().invoke(main, ["processes", "deploy", str(directory), "--note", "28 days", "--by", "owen"])
    assert result.exit_code == 0, result.output
    with runtime.db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "process_deployed")).one()
        assert event.actor_id == owner_id
        assert event.detail == {"version": "caf_episode v2", "note": "28 days", "via": "command line",
                                "operator": getpass.getuser(), "by": "owen"}


def test_a_deploy_by_someone_who_is_not_a_process_owner_is_refused(runtime, people, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    directory = edited(tmp_path, 'caf_time_limit = "P35D"', 'caf_time_limit = "P28D"')
    result = CliRunner().invoke(main, ["processes", "deploy", str(directory), "--by", "adam"])
    assert result.exit_code == 1 and "not a process owner" in result.output
    assert versions(runtime) == 1


def test_the_shipped_model_is_deployed_on_first_start(runtime):
    from sqlalchemy import delete

    from app.cli import deploy_shipped_model

    key = runtime.config.audit_signing_key()
    assert deploy_shipped_model(runtime.config.database_url, runtime.config.processes_dir, key) is None
    with runtime.db.session() as session:
        session.execute(delete(ProcessVersion))
    assert deploy_shipped_model(runtime.config.database_url, runtime.config.processes_dir, key) == "caf_episode v1"
    assert versions(runtime) == 1


def test_a_model_from_another_tool_lists_what_ecaf_cannot_run_and_deploys_nothing(runtime, tmp_path):
    """A Camunda Modeler file: a complex gateway, Camunda forms, assignees and a Java class."""
    import shutil
    from pathlib import Path

    directory = processes_copy(tmp_path)
    shutil.copy(Path(__file__).parent / "bad_models" / "camunda_invoice.bpmn", directory)
    with pytest.raises(ProcessInvalid) as raised:
        try_deploy(runtime, directory)
    problems = raised.value.problems
    assert "'decide' (Approved?): complex gateways are not supported: use an exclusive, inclusive or " \
           "parallel gateway" in problems
    assert "'invoice' (Approve an invoice): uses camunda:historyTimeToLive from another modelling tool, which " \
           "eCAF does not read (use the spiffworkflow extensions)" in problems
    assert any(p.startswith("'approve_invoice' (Approve the invoice): uses camunda:candidateGroups, "
                            "camunda:formKey") for p in problems)
    assert any(p.startswith("'pay_invoice' (Pay the invoice): uses camunda:class, camunda:inputOutput, "
                            "camunda:inputParameter") for p in problems)
    assert versions(runtime) == 1
