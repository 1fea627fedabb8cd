"""Every expression a process model holds, found and checked before the model is saved or deployed.

SpiffWorkflow hands these to the script engine: scripts (and pre- and post-scripts), gateway
conditions, timer expressions, conditional events, message and signal payloads, message
correlation, multi-instance cardinality and completion conditions, loop conditions and service
task parameters. Each is checked by the same checker that guards them at run time
(expressions.compile_checked), and any part built only of constants is worked out now, so that
`"a" * 10 ** 9` is refused at deploy rather than when an episode reaches it.
"""
from __future__ import annotations

import ast
from typing import Iterator

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .expression_runtime import ExpressionFailed, work_out
from .expressions import HELPERS, Problem, check, compile_checked

# Helpers whose answer changes from one run to the next: never worked out at deploy.
_NOT_CONSTANT = frozenset({"now_iso"})


def expressions_of(task_spec) -> Iterator[tuple[str, str, str]]:
    """(what it is, source, "eval" or "exec") for each expression of one task spec."""
    for attribute, kind in (("script", "script"), ("prescript", "pre-script"), ("postscript", "post-script")):
        source = getattr(task_spec, attribute, None)
        if source:
            yield kind, source, "exec"
    for condition, target in getattr(task_spec, "cond_task_specs", None) or []:
        if condition is not None:  # None marks the default flow
            yield f"condition towards '{target}'", condition.args[0], "eval"
    for attribute, kind in (("cardinality", "loop cardinality"), ("condition", "completion condition")):
        source = getattr(task_spec, attribute, None)
        if isinstance(source, str) and source:
            yield kind, source, "eval"
    for name, param in (getattr(task_spec, "operation_params", None) or {}).items():
        if isinstance(param, dict) and isinstance(param.get("value"), str):
            yield f"parameter '{name}'", param["value"], "eval"
    event = getattr(task_spec, "event_definition", None)
    if event is not None:
        yield from _event_expressions(event)


def _event_expressions(event) -> Iterator[tuple[str, str, str]]:
    definitions = getattr(event, "event_definitions", None) or [event]  # multiple events on one step
    for definition in definitions:
        expression = getattr(definition, "expression", None)
        if isinstance(expression, str) and expression:
            kind = "timer" if isinstance(definition, TimerEventDefinition) else "event expression"
            yield kind, expression, "eval"
        properties = [*(getattr(definition, "correlation_properties", None) or []),
                      *(getattr(definition, "process_correlations", None) or [])]
        for prop in properties:
            source = getattr(prop, "retrieval_expression", None)
            if isinstance(source, str) and source:
                yield f"correlation '{getattr(prop, 'name', '')}'", source, "eval"


def problems_of(element: str, kind: str, source: str, mode: str) -> list[str]:
    """Problems of one expression, each naming the element, what it is and the line."""
    found = check(source, mode)
    if not found:
        found = _constant_failures(source, mode)
    where = element if kind == "script" else f"{element}, the {kind}"
    return [f"{where}, {problem}" if problem.line else f"{where}: {problem}" for problem in found]


def _constant_failures(source: str, mode: str) -> list[Problem]:
    tree = compile_checked(source, mode)  # parsed and checked once, by check() just before
    problems: list[Problem] = []
    _fold(tree.body if mode == "eval" else tree, problems)
    return problems


def _fold(node: ast.AST, problems: list[Problem], whole: bool = True) -> None:
    """Work out the largest parts built only of constants; report those that always fail. A
    `whole` value (all of an expression, or what a script line assigns) must also be one a step
    can keep."""
    if isinstance(node, ast.expr) and _constant(node):
        try:
            work_out(node, kept=whole)
        except ExpressionFailed as exc:
            problems.append(Problem(exc.line, f"this always fails: {exc.message}"))
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == "isinstance":
            _fold(child.args[0], problems, whole=False)
        else:
            _fold(child, problems, whole=isinstance(node, (ast.Module, ast.If, ast.Assign, ast.AugAssign)))


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        parts = [node.func.value, *node.args, *(k.value for k in node.keywords)]
        return all(_constant(part) for part in parts)
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in HELPERS - _NOT_CONSTANT) \
                or node.func.id == "isinstance":
            return False
        return all(_constant(a) for a in node.args) and all(_constant(k.value) for k in node.keywords)
    return all(_constant(child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))
