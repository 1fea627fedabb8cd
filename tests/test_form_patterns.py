"""Form schemas cannot hang the server: patterns written to backtrack are refused at deploy (and in a
draft's problems), and at submission every pattern is searched under a time limit."""
from __future__ import annotations

import json
import logging
import signal
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.engine import forms
from app.engine.errors import ProcessInvalid
from app.engine.form_patterns import TIMED_OUT, schema_problems
from app.engine.library import MAIN_PROCESS, Bundle, deploy, validate_bundle
from app.engine.pattern_safety import pattern_problem
from app.models import ProcessVersion
from app.services import process_drafts
from app.web import schema_form as sf

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
CRAFTED = "a" * 49 + "!"  # 50 characters that make ^(a|aa)*$ try every way to split the a's
NESTED = "has a quantifier inside a quantifier"
OVERLAP = "repeats alternatives that can match the same text"

CATASTROPHIC = {
    r"^(a+)+$": NESTED,
    r"(a|aa)*b": OVERLAP,
    r"(\w+\s?)*$": NESTED,
    r"^(a|a)*$": OVERLAP,
    r"^(a|b|ab)*c$": OVERLAP,
    r"^(\d+)*$": NESTED,
    r"(.*a){20}": NESTED,
    r"^(a?){25}a{25}$": NESTED,
    r"(x+x+)+y": NESTED,
    r"^([a-z]+\.[a-z]+)+$": NESTED,
    r"^(?:[0-9]{1,9}){9}$": NESTED,
    r"^(a|ab|abc)+\d$": OVERLAP,
}
BENIGN = [
    r"^[A-Z]{2}[0-9]{6}$",
    r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$",  # UK postcode
    r"^(GIR 0AA|[A-PR-UWYZ]([0-9]{1,2}|([A-HK-Y][0-9]([0-9ABEHMNPRV-Y])?)|[0-9][A-HJKPS-UW])"
    r" ?[0-9][ABD-HJLNP-UW-Z]{2})$",  # the UK government's postcode pattern
    r"^(\d{1,3}\.){3}\d{1,3}$",
    r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$",
    r"^(-[0-9]+)*$",
    r"^([A-Z][a-z]*)( [A-Z][a-z]*)*$",
    r"^(Mr|Mrs|Ms|Miss|Dr)$",
    r"^(ab|ac)*$",
    r"^(?:(?!--).)*$",
    r"(?i)^[a-z' -]+$",
    r"^\+?[0-9 ]{10,14}$",
    r"^(\w|-)+$",
]


def with_pattern(pattern: str, *, key: bool = False) -> Bundle:
    """The shipped model, its consent form given one more field checked by `pattern`."""
    bundle = Bundle.from_directory(PROCESSES)
    schema = json.loads(bundle.forms["consent.schema.json"])
    if key:
        schema["properties"]["codes"] = {"type": "object", "patternProperties": {pattern: {"type": "string"}}}
    else:
        schema["properties"]["reference"] = {"type": "string", "pattern": pattern}
    return Bundle(bundle.bpmn_files, {**bundle.forms, "consent.schema.json": json.dumps(schema)})


def problems_of(bundle: Bundle) -> list[str]:
    with pytest.raises(ProcessInvalid) as raised:
        validate_bundle(bundle)
    return list(raised.value.problems)


@contextmanager
def must_end(seconds: int = 60):
    """Fails the test, rather than hanging the run, if what is inside never ends by itself. Python's
    `re` notices signals while it backtracks, so this stops it too."""
    def stop(signum, frame):
        raise AssertionError(f"still checking after {seconds} seconds: nothing bounded the search")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- at deploy


@pytest.mark.parametrize("pattern", sorted(CATASTROPHIC))
def test_a_pattern_written_to_backtrack_is_refused_naming_the_file_and_the_path(pattern):
    problems = problems_of(with_pattern(pattern))
    assert len(problems) == 1, problems
    assert problems[0].startswith("'obtain_consent' (Obtain consent): the form file consent.schema.json is not a "
                                  "valid JSON Schema: the pattern at properties.reference.pattern, "), problems
    assert pattern in problems[0] and CATASTROPHIC[pattern] in problems[0]
    assert "which can take forever on some inputs" in problems[0]


def test_a_property_name_pattern_that_backtracks_is_refused_too():
    problems = problems_of(with_pattern(r"^(a+)+$", key=True))
    assert len(problems) == 1 and "the pattern at properties.codes.patternProperties, '^(a+)+$', " + NESTED \
        in problems[0], problems


@pytest.mark.parametrize("pattern, problem", [
    ("^(ab", "is not a valid regular expression: missing ), unterminated subpattern at position 1"),
    ("[a-z]{2}" * 130, "is 1,040 characters long: at most 1,000 are accepted"),
    ("^x{1000000}$", "is 1,000,002 steps long once its repeat counts are multiplied out"),
    ("^(?:x{100}){200}$", "is 20,002 steps long"),
    ("(" * 40 + "a" + ")" * 40, "nested more than 30 deep"),
])
def test_patterns_that_do_not_compile_or_are_too_big_are_refused(pattern, problem):
    problems = problems_of(with_pattern(pattern))
    assert len(problems) == 1 and "the pattern at properties.reference.pattern, " in problems[0], problems
    assert problem in problems[0]


@pytest.mark.parametrize("pattern", BENIGN)
def test_ordinary_patterns_are_accepted(pattern):
    assert pattern_problem(pattern) is None
    validate_bundle(with_pattern(pattern))


def test_a_backtracking_pattern_deploys_nothing(runtime):
    with runtime.db.session() as session:
        with pytest.raises(ProcessInvalid) as raised:
            deploy(session, with_pattern(r"^(\w+\s?)*$"))
    assert "consent.schema.json" in str(raised.value) and "properties.reference.pattern" in str(raised.value)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProcessVersion)) == 1


def test_every_place_a_schema_can_hold_a_pattern_is_checked():
    bad = {"type": "string", "pattern": "^(a+)+$"}
    schema = {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {"name": bad}}},
                       "pair": {"prefixItems": [{"type": "string"}, bad]}},
        "$defs": {"code": bad},
        "definitions": {"old": bad},
        "allOf": [bad], "anyOf": [{"type": "null"}, bad], "oneOf": [bad],
        "if": bad, "then": bad, "else": bad, "not": bad,
        "dependentSchemas": {"rows": {"properties": {"why": bad}}},
        "patternProperties": {"^(a|aa)*$": {"type": "string"}, "^x_": bad},
        "additionalProperties": bad, "propertyNames": bad, "contains": bad,
        "enum": [{"pattern": "^(a+)+$"}], "const": {"pattern": "^(a+)+$"},  # values, not schemas
        "examples": [{"pattern": "^(a+)+$"}], "default": {"pattern": "^(a+)+$"},
    }
    paths = sorted(p.split(", ")[0].removeprefix("the pattern at ") for p in schema_problems(schema))
    assert paths == sorted([
        "properties.rows.items.properties.name.pattern", "properties.pair.prefixItems.1.pattern",
        "$defs.code.pattern", "definitions.old.pattern", "allOf.0.pattern", "anyOf.1.pattern", "oneOf.0.pattern",
        "if.pattern", "then.pattern", "else.pattern", "not.pattern", "dependentSchemas.rows.properties.why.pattern",
        "patternProperties", "patternProperties.^x_.pattern", "additionalProperties.pattern",
        "propertyNames.pattern", "contains.pattern"])


def test_unevaluated_properties_with_pattern_properties_is_refused():
    schema = {"type": "object", "properties": {"extra": {"unevaluatedProperties": False,
                                                         "patternProperties": {"^n_": {"type": "string"}}}}}
    assert forms.check_schema(schema) == (
        "the schema at properties.extra uses unevaluatedProperties together with patternProperties or $ref, "
        "which eCAF cannot check in bounded time: use additionalProperties instead")
    assert forms.check_schema({"type": "object", "unevaluatedProperties": False,
                               "properties": {"a": {"type": "string"}}}) is None


def test_a_drafts_problems_and_its_form_editor_name_the_pattern():
    bundle = with_pattern(r"(a|aa)*b")
    draft = SimpleNamespace(id=1, process_id=MAIN_PROCESS, bpmn_files=bundle.bpmn_files, forms=bundle.forms)
    listed = process_drafts.problems_of(draft)
    assert len(listed) == 1 and "consent.schema.json" in listed[0] and \
        "the pattern at properties.reference.pattern, '(a|aa)*b', " + OVERLAP in listed[0], listed

    typed = json.dumps({"type": "object", "properties": {"ref": {"type": "string", "pattern": "^(a+)+$"}}})
    assert process_drafts.form_problems(typed, "")["schema"].startswith(
        "The JSON Schema is not valid: the pattern at properties.ref.pattern, '^(a+)+$', " + NESTED)


# ---------------------------------------------------------------- at submission


def slipped_through(pattern: str = "^(a|aa)*$") -> dict:
    """A schema as a version stored before these checks could hold it: never passed to check_schema."""
    return {"type": "object", "additionalProperties": False,
            "properties": {"reference": {"type": "string", "pattern": pattern, "x-ecaf-message": "Enter a reference"},
                           "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{6}$"}},
            "patternProperties": {"^n(a|aa)*$": {"type": "string"}}}


def test_a_crafted_answer_to_a_pattern_that_slipped_through_is_an_error_on_its_field(caplog):
    assert forms.check_schema(slipped_through()) is not None  # deploy would have refused it
    caplog.set_level(logging.WARNING, logger="app.engine.form_patterns")
    with must_end():
        errors = forms.validate(slipped_through(), {"reference": CRAFTED, "code": "AB123456"})
    assert errors == [{"field": "reference", "message": TIMED_OUT}]
    assert "could not be checked" in caplog.text and "^(a|aa)*$" in caplog.text
    assert CRAFTED not in caplog.text  # the answer is a child's data: never logged


def test_a_crafted_property_name_is_an_error_too():
    with must_end():
        errors = forms.validate(slipped_through(), {"n" + CRAFTED: "x"})
    assert errors == [{"field": "n" + CRAFTED, "message": TIMED_OUT}]


def test_an_answer_left_unchecked_inside_not_or_any_of_still_stops_the_submission():
    schema = {"type": "object", "properties": {
        "reference": {"type": "string", "not": {"pattern": "^(a|aa)*$"}},
        "other": {"anyOf": [{"type": "string", "pattern": "^(a|aa)*$"}, {"type": "integer"}]}}}
    with must_end():
        assert forms.validate(schema, {"reference": CRAFTED}) == [{"field": "", "message": TIMED_OUT}]
    with must_end():
        errors = forms.validate(schema, {"other": CRAFTED})
    assert errors and all(e["field"] in ("", "other") for e in errors)


def test_many_crafted_answers_share_one_time_limit_and_each_is_an_error():
    schema = {"type": "object", "properties": {
        "rows": {"type": "array", "items": {"type": "string", "pattern": "^(a|aa)*$"}}}}
    with must_end():
        errors = forms.validate(schema, {"rows": [CRAFTED + str(i) for i in range(20)]})
    assert errors == [{"field": f"rows.{i}", "message": TIMED_OUT} for i in range(20)]


def test_unevaluated_properties_stored_with_pattern_properties_is_not_run():
    schema = {"type": "object", "unevaluatedProperties": False, "patternProperties": {"^(a|aa)*$": {}}}
    with must_end():
        errors = forms.validate(schema, {CRAFTED: 1})
    assert {"field": "", "message": TIMED_OUT} in errors and all(e["message"] == TIMED_OUT for e in errors)


def test_patterns_keep_their_meaning_search_not_match():
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"code": {"type": "string", "pattern": "[0-9]{3}"}},
              "patternProperties": {"^n_": {"type": "integer"}}}
    assert forms.validate(schema, {"code": "ref 123 x", "n_1": 4}) == []
    assert forms.validate(schema, {"code": "12x"}) == [{"field": "code", "message": "'12x' does not match '[0-9]{3}'"}]
    assert forms.validate(schema, {"n_1": "four"}) == [{"field": "n_1", "message": "'four' is not of type 'integer'"}]
    assert [e["field"] for e in forms.validate(schema, {"other": 1})] == [""]
    rule = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}$",
                                                      "x-ecaf-message": "Enter two capital letters"}}}
    assert forms.validate(rule, {"code": "ab"}) == [{"field": "code", "message": "Enter two capital letters"}]


def test_the_form_page_shows_the_unchecked_answer_as_an_error_on_its_field():
    schema = slipped_through()
    data = {"reference": CRAFTED}
    with must_end():
        form = sf.build_form(schema, {}, data, forms.validate(schema, data))
    assert [e["text"] for e in form.error_list] == [TIMED_OUT]
