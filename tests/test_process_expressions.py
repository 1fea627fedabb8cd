"""Process models run no code: what the expression language allows, and a corpus of escape
attempts, each refused when a model is deployed and refused again when forced into a stored one."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from app.engine import expression_runtime as runtime_language
from app.engine.errors import ProcessInvalid
from app.engine.expression_runtime import ExpressionFailed, evaluate, execute
from app.engine.expressions import ExpressionRefused, check
from app.engine.library import Bundle, validate_bundle
from app.engine.scripting import SCRIPT_ENGINE
from app.engine.serializer import StateVersionRefused, dump_specs, load_specs, load_state
from app.models import Episode, ProcessVersion

from .draft_site import site  # noqa: F401 - the signed-in process owners

# Whole statements: only a script can hold them.
STATEMENT_ESCAPES = [
    "import os",
    "from os import system",
    "import builtins as b",
    "def f():\n    return 1",
    "class A:\n    pass",
    "@decorator\ndef f():\n    pass",
    "for i in [1, 2]:\n    pass",
    "while True:\n    pass",
    "global started_at\nstarted_at = 1",
    "with thing as f:\n    pass",
    "try:\n    x = 1\nexcept Exception:\n    pass",
    "del started_at",
    "raise SystemExit(1)",
    "started_at.upper = 1",
    "started_at[0] = 1",
    "__builtins__ = {}",
    "len = 3",
    "x, y = 1, 2",
    "started_at.upper()",
]

# Expressions: refused in a script, a condition, a timer or a parameter alike.
EXPRESSION_ESCAPES = [
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[1].__subclasses__()",
    "iso_after.__globals__['__builtins__']",
    "now_iso.__code__",
    "started_at.upper.__self__",
    "started_at.__len__()",
    "(x for x in [1]).gi_frame.f_globals",
    "[c for c in [1]]",
    "{k: 1 for k in [1]}",
    "'{0.__class__}'.format(1)",
    "'{0.upper.__globals__}'.format(started_at)",
    "'%s' % started_at",
    "lambda: 0",
    "eval('1 + 1')",
    "exec('x = 1')",
    "compile('1', 'x', 'eval')",
    "open('/etc/passwd').read()",
    "getattr(started_at, 'upper')",
    "globals()",
    "vars()",
    "type(started_at)",
    "dir()",
    "breakpoint()",
    "print(started_at)",
    "max([1], key=len)",
    "isinstance(started_at, object)",
    "(y := 1)",
    "f'{started_at!r}'",
    "f'{started_at:>1000000000}'",
    "{1, 2}",
    "b'bytes'",
    "1j",
    "...",
    "str.join",
    "started_at << 1000000",
    "\uff3f\uff3fimport\uff3f\uff3f('os')",  # full-width underscores: Python reads them as '_'
    "-" * 200 + "1",
    "'a' * 10 ** 9",
    "2 ** 10 ** 9",
    "9 ** 9 ** 9",
    "[0] * 10 ** 9",
    "'x' * 150000 + 'x' * 150000",
    "'a' * 100000 .replace('a', 'aaaa')",
    "('\\U0001F601' * 200000).strip('\\U0001F600' * 99 + '\\U0001F601' * 1000)",
    "0x" + "f" * 3600,
    "iso_after('2024-01-01T00:00:00+00:00', 'P1W1D')",
    "start_of_day('2024-13-01')",
    "{}[('x' * 100000, 'y' * 100000)]",
    "{(1, 2): 1}",
    "1e999",
    "(-1) ** 0.5",
    "','.join(['a' * 100000, 'b' * 100000, 'c'])",
    "int('9' * 5000)",
    "1 / 0",
]

assert len(STATEMENT_ESCAPES) + len(EXPRESSION_ESCAPES) >= 30

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://ecaf.test">
  <bpmn:process id="probe" name="Probe" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="apply" name="Apply the rule"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="decide" name="Decide" default="f4"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="apply"/>
    <bpmn:sequenceFlow id="f2" sourceRef="apply" targetRef="decide"/>
    <bpmn:sequenceFlow id="f3" sourceRef="decide" targetRef="wait">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="decide" targetRef="end_now"/>
    <bpmn:intermediateCatchEvent id="wait" name="Wait"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:timerEventDefinition id="wait_timer"><bpmn:timeDate>{timer}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f5" sourceRef="wait" targetRef="end_later"/>
    <bpmn:endEvent id="end_now"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_later"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def model(script="marker = True", condition="marker == True", timer='"2030-01-01T09:00:00+00:00"') -> str:
    return MODEL.format(script=_xml(script), condition=_xml(condition), timer=_xml(timer))


def deploy_problems(xml: str) -> list[str]:
    with pytest.raises(ProcessInvalid) as raised:
        validate_bundle(Bundle({"probe.bpmn": xml}, {}), "probe")
    return raised.value.problems


def run_unchecked(xml: str) -> BpmnWorkflow:
    """A stored model that was never checked (an old version, a database edited by hand): parsed
    straight by SpiffWorkflow and run on eCAF's script engine."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml.encode(), filename="probe.bpmn")
    workflow = BpmnWorkflow(parser.get_spec("probe"), parser.get_subprocess_specs("probe"),
                            script_engine=SCRIPT_ENGINE)
    workflow.get_next_task(spec_name="Start").set_data(started_at="2026-12-03T10:00:00+00:00")
    try:
        workflow.do_engine_steps()
    except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
        workflow.raised = exc
    else:
        workflow.raised = None
    return workflow


def test_the_shipped_models_deploy_unchanged():
    from app.config import PROJECT_ROOT

    validate_bundle(Bundle.from_directory(PROJECT_ROOT / "processes"))


@pytest.mark.parametrize("script", STATEMENT_ESCAPES + [f"x = {e}" for e in EXPRESSION_ESCAPES])
def test_each_escape_in_a_script_is_refused_at_deploy_naming_the_element_and_line(script):
    problems = deploy_problems(model(script="marker = True\n" + script))
    assert problems and all(p.startswith("'apply' (Apply the rule), line ") for p in problems), problems
    assert any(p.startswith("'apply' (Apply the rule), line 2") for p in problems), problems


@pytest.mark.parametrize("expression", EXPRESSION_ESCAPES)
def test_each_escape_in_a_condition_or_a_timer_is_refused_at_deploy(expression):
    problems = deploy_problems(model(condition=expression, timer=expression))
    assert any(p.startswith("'decide' (Decide), the condition towards 'wait', line 1: ") for p in problems), problems
    assert any(p.startswith("'wait' (Wait), the timer, line 1: ") for p in problems), problems


@pytest.mark.parametrize("script", STATEMENT_ESCAPES + [f"x = {e}" for e in EXPRESSION_ESCAPES])
def test_each_escape_forced_into_a_stored_script_fails_the_step_and_nothing_runs(script):
    workflow = run_unchecked(model(script="marker = True\n" + script))
    failed = workflow.get_tasks(state=TaskState.ERROR)
    assert [t.task_spec.bpmn_id for t in failed] == ["apply"], workflow.raised
    assert "marker" not in failed[0].data and "x" not in failed[0].data  # not even the lines before it ran
    assert "refused" in str(workflow.raised) or "failed" in str(workflow.raised)


@pytest.mark.parametrize("expression", EXPRESSION_ESCAPES)
def test_each_escape_forced_into_a_stored_condition_fails_the_step(expression):
    workflow = run_unchecked(model(condition=expression))
    assert [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.ERROR)] == ["decide"], workflow.raised
    assert not workflow.is_completed()


def test_a_refused_message_names_the_construct():
    assert [str(p) for p in check("import os", "exec")] == ["line 1: imports are not allowed"]
    assert "names starting with '_' are not allowed ('__class__')" in str(check("x.__class__")[0])
    assert "'open' is not a helper you can call" in str(check("open('f')")[0])
    assert "'.format()' is not a method you can call" in str(check("'{}'.format(1)")[0])
    problems = deploy_problems(model(script="a = 1\nb = 2\nimport os"))
    assert problems == ["'apply' (Apply the rule), line 3: imports are not allowed"]
    problems = deploy_problems(model(script="x = 'a' * 10 ** 9"))
    assert problems == ["'apply' (Apply the rule), line 1: this always fails: the text would be longer than "
                        "200,000 characters"]


def test_the_language_does_what_the_shipped_models_need():
    data = {"started_at": "2026-01-01T00:00:00+00:00", "caf_time_limit": "P35D", "child_protection_time_limit": "PT48H",
            "pre_assessment_checklist": {"child_protection_concern": True},
            "child_protection_record": {"recorded_at": "2026-01-02T10:00:00+00:00"}}
    execute('caf_due_at = iso_after(started_at, caf_time_limit)\n'
            'child_protection_concern = bool(pre_assessment_checklist.get("child_protection_concern"))\n'
            'child_protection_due_at = iso_after(child_protection_record["recorded_at"], '
            'child_protection_time_limit) if child_protection_concern else caf_due_at\n', data)
    assert data["caf_due_at"] == "2026-02-05T00:00:00+00:00"
    assert data["child_protection_due_at"] == "2026-01-04T10:00:00+00:00"
    assert evaluate('not isinstance(service_request, dict) or not service_request.get("id")',
                    {"service_request": {"id": 4}}) is False
    assert evaluate('start_of_day("2026-07-01")', {}) == "2026-07-01T08:00:00+00:00"  # 09:00 BST
    assert evaluate('"PT24H"', {}) == "PT24H"


def test_arithmetic_text_lists_and_choices():
    data = {"scores": [3, 5, 8], "name": "  Casey  ", "plan": {"actions": [{"done": True}, {"done": False}]}}
    assert evaluate("sum(scores) / len(scores)", data) == pytest.approx(16 / 3)
    assert evaluate("max(scores) - min(scores) + abs(-2) + round(2.567, 2)", data) == pytest.approx(9.57)
    assert evaluate("name.strip().upper() + '!'", data) == "CASEY!"
    assert evaluate("f'{len(scores)} scores, first {scores[0]}'", data) == "3 scores, first 3"
    assert evaluate("'high' if 8 in scores and not 9 in scores else 'low'", data) == "high"
    assert evaluate("plan['actions'][1].get('done') is False", data) is True
    assert evaluate("scores[1:] + [13]", data) == [5, 8, 13]
    assert evaluate("int('42') + float('0.5') + 3 // 2 + 7 % 4 + 2 ** 10", data) == 42 + 0.5 + 1 + 3 + 1024
    assert evaluate("{'a': [1, (2, 3)], 'b': None}", data) == {"a": [1, [2, 3]], "b": None}  # kept as JSON
    execute("total = 0\nif len(scores) > 2:\n    total += sum(scores)\nelif True:\n    total = -1\nelse:\n    pass",
            data)
    assert data["total"] == 16


def test_a_script_that_fails_part_way_changes_no_task_data():
    data = {"count": 1}
    with pytest.raises(ExpressionFailed) as raised:
        execute("count = 2\nlabel = 'set'\nbroken = missing_value + 1", data)
    assert data == {"count": 1}
    assert raised.value.line == 3 and "'missing_value' has no value" in str(raised.value)


@pytest.mark.parametrize("source, data, message", [
    ("text * 100000", {"text": "abc"}, "longer than"),
    ("text.replace('a', text)", {"text": "a" * 1000}, "longer than"),
    ("', '.join(items)", {"items": ["x" * 10] * 50000}, "longer than"),
    ("big == other", {"big": [[0] * 50000] * 20, "other": [[0] * 50000] * 20}, "steps of work"),
    ("value in items", {"value": [1], "items": [[0] * 1000] * 1000}, "steps of work"),
    ("x ** 300", {"x": 10}, "too large"),
    ("nested", {"nested": json.loads("[" * 40 + "]" * 40)}, "nested more than"),
    ("int(text)", {"text": "9" * 500}, "at most 100 characters"),
    ("int(m)", {"m": Decimal("1e999999")}, "too large"),
    ("round(m)", {"m": Decimal("1e999999")}, "too large"),
    ("y in a", {"a": ["\U0001F600" * 199999 + "a"] * 99999, "y": "\U0001F600" * 199999 + "b"}, "steps of work"),
    ("a.count(y)", {"a": ["\U0001F600" * 199999 + "a"] * 99999, "y": "\U0001F600" * 199999 + "b"}, "steps of work"),
    ("[s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), "
     "s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), "
     "s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper(), s.upper()]",
     {"s": "\U0001F600" * 200000}, "more than 5,000,000 characters or items in all"),
    ("{}[key]", {"key": ("x" * 100000,) * 1000}, "no a list in the value"),
    ("iso_after('2024-01-01T00:00:00+00:00', d)", {"d": "PT"}, "ISO 8601 duration"),
])
def test_limits_hold_on_data_the_checker_cannot_see(source, data, message):
    with pytest.raises(ExpressionFailed) as raised:
        evaluate(source, data)
    assert message in str(raised.value)


def test_what_a_script_keeps_is_plain_json_of_a_bounded_size():
    data = {"s": "\U0001F600" * 200000}
    with pytest.raises(ExpressionFailed) as raised:
        execute("a = [s, s, s, s, s, s]", data)
    assert "more than 1,000,000 characters of text" in str(raised.value) and "a" not in data
    execute("pair = (1, 2)", data)
    assert data["pair"] == [1, 2]  # what the episode keeps is what JSON gives back


def test_values_that_could_not_be_stored_are_refused():
    with pytest.raises(ExpressionFailed):
        evaluate("float('nan')", {})
    with pytest.raises(ExpressionRefused):
        evaluate("x.__class__", {"x": 1})


def test_a_stored_version_with_a_refused_script_fails_the_step_recoverably(runtime, people):
    with runtime.db.session() as session:
        current = session.scalar(select(ProcessVersion).order_by(ProcessVersion.version.desc()))
        spec, subprocess_specs = load_specs(current.spec_json)
        spec.task_specs["open_episode"].script = 'caf_time_limit = "P35D"\nimport os\nos.system("touch /tmp/owned")'
        session.add(ProcessVersion(
            process_id=current.process_id, name=current.name, version=current.version + 1,
            content_hash="0" * 64, bpmn_files=current.bpmn_files, forms=current.forms,
            spec_json=dump_specs(spec, subprocess_specs), serializer_version=current.serializer_version,
            deployed_at=current.deployed_at))
    result = runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"])
    assert result.status == "error"
    with runtime.db.session() as session:
        episode = session.get(Episode, result.episode_id)
        assert episode.error_task == "Open the episode"
        assert "imports are not allowed" in episode.last_error and "none of it ran" in episode.last_error
        assert "caf_time_limit" not in episode.state  # the line before the import did not run either


def test_a_state_written_by_another_serializer_version_is_never_read(runtime):
    with runtime.db.session() as session:
        current = session.scalar(select(ProcessVersion))
        spec, subprocess_specs = load_specs(current.spec_json)
    with pytest.raises(StateVersionRefused):
        load_state("{}", "1.2", spec, subprocess_specs)


def test_the_interpreter_limits_are_what_the_guide_says():
    guide = (__import__("app.config", fromlist=["PROJECT_ROOT"]).PROJECT_ROOT / "docs"
             / "process-expressions.md").read_text()
    assert f"{runtime_language.MAX_TEXT:,}" in guide and f"{runtime_language.MAX_ITEMS:,}" in guide


POSITIONS_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://ecaf.test">
  <bpmn:message id="note" name="note"/>
  <bpmn:correlationProperty id="ref" name="ref">
    <bpmn:correlationPropertyRetrievalExpression messageRef="note">
      <bpmn:formalExpression>{correlation}</bpmn:formalExpression>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:process id="probe" name="Probe" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="call" name="Call a handler"><bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="episode/close" resultVariable="r">
          <spiffworkflow:parameters><spiffworkflow:parameter id="stage" type="any" value="{parameter}"/></spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
        <spiffworkflow:preScript>{prescript}</spiffworkflow:preScript>
      </bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:scriptTask id="repeat" name="Repeat"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics isSequential="true">
        <bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>
      </bpmn:multiInstanceLoopCharacteristics>
      <bpmn:script>n = 1</bpmn:script></bpmn:scriptTask>
    <bpmn:intermediateThrowEvent id="tell" name="Tell"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="note"><bpmn:extensionElements>
        <spiffworkflow:messagePayload>{payload}</spiffworkflow:messagePayload>
      </bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="repeat"/>
    <bpmn:sequenceFlow id="f3" sourceRef="repeat" targetRef="tell"/>
    <bpmn:sequenceFlow id="f4" sourceRef="tell" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_parameters_pre_scripts_cardinality_payloads_and_correlations_are_checked_too():
    def positions(**escapes):
        values = {"correlation": "ref", "parameter": "'x'", "prescript": "y = 1", "cardinality": "2",
                  "payload": "{'a': 1}", **escapes}
        return POSITIONS_MODEL.format(**{k: _xml(v).replace('"', "&quot;") for k, v in values.items()})

    try:
        validate_bundle(Bundle({"probe.bpmn": positions()}, {}), "probe")
    except ProcessInvalid as exc:  # the model itself is sound: only the escapes below are refused
        assert not any("line" in p for p in exc.problems), exc.problems
    escape = "().__class__.__base__.__subclasses__()"
    problems = deploy_problems(positions(correlation=escape, parameter=escape, prescript="import os",
                                         cardinality=escape, payload=escape))
    expected = ["'call' (Call a handler), the parameter 'stage', line 1: names starting with '_'",
                "'call' (Call a handler), the pre-script, line 1: imports are not allowed",
                "'repeat' (Repeat), the loop cardinality, line 1: names starting with '_'",
                "'tell' (Tell), the event expression, line 1: names starting with '_'",
                "'tell' (Tell), the correlation 'ref', line 1: names starting with '_'"]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)


def test_a_draft_with_an_escape_shows_it_when_saved_and_cannot_be_submitted(site):
    from .draft_site import draft_of, new_draft, save, submit
    from .web import text_of

    draft_id = new_draft(site)
    xml = draft_of(site["runtime"], draft_id).bpmn_files["caf_episode.bpmn"]
    changed = xml.replace("assessment_submitted = True</bpmn:script>",
                          "assessment_submitted = True\nimport os</bpmn:script>", 1)
    answer = save(site, draft_id, changed, 1)
    assert answer.json["saved"] and answer.json["problems"] == [
        "'mark_submitted' (Mark as submitted), line 2: imports are not allowed"]
    checked = site["owner"].post(f"/processes/drafts/{draft_id}/validate", token_from=f"/processes/drafts/{draft_id}")
    page = text_of(checked)
    assert "line 2: imports are not allowed" in page and "what a process model may say" in page
    refused = submit(site, draft_id)
    assert refused.status_code in (400, 409) and "imports are not allowed" in text_of(refused)
    assert draft_of(site["runtime"], draft_id).review_status in (None, "editing")
