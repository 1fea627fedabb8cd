"""Service-task handlers, registered by operator name.

A BPMN service task names an operator (`spiffworkflow:serviceTaskOperator id="index/notify"`);
the engine calls the function registered under that name with the step's context and the
task's parameters, inside the step's transaction. A handler returns a JSON-able dict for
the workflow (stored in the task's result variable) and raises to fail the step.
"""
from __future__ import annotations

from importlib import import_module
from typing import Callable

OPERATORS: dict[str, Callable] = {}
_MODULES = ("artefacts", "assessment", "consent", "contributions", "deadlines", "episodes", "index", "outcomes",
            "reviews", "services", "share")


def operator(name: str):
    def register(fn: Callable) -> Callable:
        if name in OPERATORS and OPERATORS[name] is not fn:
            raise ValueError(f"operator {name!r} is registered twice")
        OPERATORS[name] = fn
        return fn
    return register


def load_all() -> dict[str, Callable]:
    for module in _MODULES:
        import_module(f"handlers.{module}")
    return OPERATORS
