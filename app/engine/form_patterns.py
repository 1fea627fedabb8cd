"""Form schemas' regular expressions (`pattern`, `patternProperties`) never hang a worker.

At deploy, `schema_problems` walks the whole schema and names, by JSON path, every pattern that
app.engine.pattern_safety refuses. At submission, `Validator` (Draft 2020-12) searches every pattern
with the `regex` module under a time limit, so even a schema stored before these checks cannot hang:
an answer that takes too long becomes a validation error on its field, and is logged.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator, ValidationError, validators

from .pattern_safety import PatternRefused, compiled, pattern_problem

log = logging.getLogger(__name__)

SEARCH_SECONDS = 0.25  # one search of one answer
SUBMISSION_SECONDS = 1.0  # every search of one submission together
LOGGED_PER_SUBMISSION = 3  # a form of a thousand crafted rows logs three lines, not a thousand
TIMED_OUT = "This answer could not be checked: shorten it or contact support"
UNEVALUATED = ("uses unevaluatedProperties together with patternProperties or $ref, which eCAF cannot check "
               "in bounded time: use additionalProperties instead")

_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})  # values, not subschemas
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
                          "dependencies"})


# ---------------------------------------------------------------- at deploy


def schema_problems(schema) -> list[str]:
    """What is wrong with each pattern in the schema (nested properties, items, $defs, allOf...)."""
    problems, stack = [], [(schema, "")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        at = path + "." if path else ""
        if isinstance(node.get("pattern"), str) and (problem := pattern_problem(node["pattern"])):
            problems.append(f"the pattern at {at}pattern, {_shown(node['pattern'])}, {problem}")
        if isinstance(node.get("patternProperties"), dict):
            for key in node["patternProperties"]:
                if problem := pattern_problem(key):
                    problems.append(f"the pattern at {at}patternProperties, {_shown(key)}, {problem}")
        if "unevaluatedProperties" in node and _reaches_patterns(node):
            problems.append(f"the schema at {path or 'the top level'} {UNEVALUATED}")
        for key, value in reversed(node.items()):
            if key in _DATA_KEYWORDS:
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                stack.extend((sub, f"{at}{key}.{name}") for name, sub in reversed(value.items()))
            elif isinstance(value, dict):
                stack.append((value, at + key))
            elif isinstance(value, list):
                stack.extend((sub, f"{at}{key}.{i}") for i, sub in reversed(list(enumerate(value))))
    return problems


def _shown(pattern: str) -> str:
    return "'" + (pattern if len(pattern) <= 80 else pattern[:77] + "…") + "'"


def _reaches_patterns(schema: dict) -> bool:
    """Whether jsonschema's unevaluatedProperties could search a patternProperties regex itself,
    outside the time limit: through patternProperties or a $ref anywhere below it."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if {"patternProperties", "$ref", "$dynamicRef"} & node.keys():
                return True
            stack.extend(v for k, v in node.items() if k not in _DATA_KEYWORDS)
        elif isinstance(node, list):
            stack.extend(node)
    return False


# ---------------------------------------------------------------- at run time


class Unchecked(ValidationError):
    """An answer whose pattern could not be searched in time: the form shows TIMED_OUT on its field."""


@dataclass
class Budget:
    deadline: float
    unchecked: int = 0  # answers left unchecked, even inside anyOf or not where no error shows
    timed_out: set[tuple[str, str]] = field(default_factory=set)  # each (pattern, text) is tried once


_budget: ContextVar[Budget | None] = ContextVar("form_pattern_budget", default=None)


@contextmanager
def time_limit(seconds: float = SUBMISSION_SECONDS):
    """Every search made inside shares `seconds` between them, on top of each one's own limit."""
    budget = Budget(time.monotonic() + seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def search(pattern: str, text: str) -> bool:
    """jsonschema's semantics (a match anywhere in the text), within the time left. Raises
    TimeoutError when time runs out and PatternRefused when the pattern cannot be compiled safely."""
    budget = _budget.get()
    if budget is None:
        return compiled(pattern).search(text, timeout=SEARCH_SECONDS) is not None
    seconds = min(SEARCH_SECONDS, budget.deadline - time.monotonic())
    if seconds <= 0 or (pattern, text) in budget.timed_out:
        raise TimeoutError("out of time for this submission's patterns")
    try:
        return compiled(pattern).search(text, timeout=seconds) is not None
    except TimeoutError:
        budget.timed_out.add((pattern, text))
        raise


def _unchecked(why: str, path=()) -> Unchecked:
    budget = _budget.get()
    if budget is None or budget.unchecked < LOGGED_PER_SUBMISSION:
        log.warning("a form answer could not be checked: %s", why)
    if budget is not None:
        budget.unchecked += 1
    return Unchecked(TIMED_OUT, path=path)


def _search_failed(pattern: str, text: str, exc: Exception, path=()) -> Unchecked:
    # Never the answer itself in the log: it is a child's data.
    return _unchecked(f"{type(exc).__name__} ({exc}) searching a {len(text)}-character answer for "
                      f"{pattern[:200]!r}", path)


def _pattern(validator, pattern, instance, schema):
    if not validator.is_type(instance, "string"):
        return
    try:
        if not search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")
    except (TimeoutError, PatternRefused) as exc:
        yield _search_failed(pattern, instance, exc)


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            try:
                found = search(pattern, key)
            except (TimeoutError, PatternRefused) as exc:
                yield _search_failed(pattern, key, exc, path=(key,))
                continue
            if found:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    """jsonschema's own, with the patternProperties searched under the time limit."""
    if not validator.is_type(instance, "object"):
        return
    properties, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = []
    for key in instance:
        if key in properties:
            continue
        try:
            if any(search(pattern, key) for pattern in patterns):
                continue
        except (TimeoutError, PatternRefused):
            continue  # patternProperties reports this key as unchecked
        extras.append(key)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            unexpected = ", ".join(repr(extra) for extra in sorted(extras, key=str))
            yield ValidationError(f"Additional properties are not allowed ({unexpected} {verb} unexpected)")


_jsonschema_unevaluated = Draft202012Validator.VALIDATORS["unevaluatedProperties"]


def _unevaluated_properties(validator, unevaluated, instance, schema):
    # jsonschema's own searches patternProperties with `re`, out of reach of the time limit; deploy
    # refuses such a schema, so this is only a version stored before that check.
    if validator.is_type(instance, "object") and _reaches_patterns(schema):
        yield _unchecked("the schema uses unevaluatedProperties with patternProperties or $ref")
        return
    yield from _jsonschema_unevaluated(validator, unevaluated, instance, schema)


Validator = validators.extend(Draft202012Validator, {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
})
