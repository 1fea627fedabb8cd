"""The script engine: BPMN scripts and expressions run in eCAF's own expression language
(expressions.py, expression_runtime.py), never Python's eval/exec; service tasks dispatch to handlers."""
from __future__ import annotations

import json

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

import handlers

from . import expression_runtime
from .context import current_step
from .expressions import ExpressionRefused, compile_checked


class ProcessExpressionEnvironment(BasePythonScriptEngineEnvironment):
    """The two methods SpiffWorkflow uses to run what a model says, on our interpreter."""

    def evaluate(self, expression, context, external_context=None):
        return expression_runtime.evaluate(expression, context, external_context)

    def execute(self, script, context, external_context=None):
        return expression_runtime.execute(script, context, external_context)

    def call_service(self, context, **kwargs):
        raise NotImplementedError("service tasks are dispatched by AppScriptEngine.call_service")


class AppScriptEngine(PythonScriptEngine):
    """Scripts and expressions in the process language; service tasks call handlers by operator name."""

    def __init__(self):
        super().__init__(environment=ProcessExpressionEnvironment())
        self.operators = handlers.load_all()

    def validate(self, expression):
        compile_checked(expression, "exec")

    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ExpressionRefused as exc:
            raise WorkflowTaskException(f"the expression {expression!r} is refused, so nothing ran: {exc}",
                                        task=task, exception=exc) from exc
        except expression_runtime.ExpressionFailed as exc:
            raise WorkflowTaskException(f"the expression {expression!r} could not be worked out: {exc}",
                                        task=task, exception=exc) from exc

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except ExpressionRefused as exc:
            raise WorkflowTaskException(f"the script is refused, so none of it ran: {exc}", task=task,
                                        exception=exc, line_number=exc.line or 0) from exc
        except expression_runtime.ExpressionFailed as exc:
            raise WorkflowTaskException(f"the script failed, so none of it took effect: {exc}", task=task,
                                        exception=exc, line_number=exc.line or 0) from exc

    def call_service(self, task, operation_name, operation_params, **kwargs):
        handler = self.operators.get(operation_name)
        if handler is None:
            raise WorkflowTaskException(f"no handler is registered for operator '{operation_name}'", task=task)
        ctx = current_step()
        params = {name: p["value"] for name, p in operation_params.items()}
        ctx.task_id = str(task.id)
        try:
            # A savepoint: a handler that fails leaves nothing half-written.
            with ctx.session.begin_nested():
                result = handler(ctx, **params)
        except Exception as exc:
            raise WorkflowTaskException(f"{operation_name} failed: {exc}", task=task, exception=exc) from exc
        finally:
            ctx.task_id = None
        return json.dumps(result if result is not None else {})


SCRIPT_ENGINE = AppScriptEngine()
