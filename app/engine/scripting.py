"""The script engine: BPMN scripts and expressions, and service tasks dispatched to handlers."""
from __future__ import annotations

import json
from datetime import datetime, time
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

import handlers
from app.clock import as_utc, now

from .context import current_step

LOCAL_ZONE = ZoneInfo("Europe/London")
# Reviews fall due at the start of the working day, local time.
REVIEW_TIME = time(9, 0)


def iso_after(start_iso: str, duration: str) -> str:
    """Timezone-aware ISO time `duration` (ISO 8601, e.g. "P35D") after `start_iso`."""
    start = as_utc(datetime.fromisoformat(start_iso))
    parsed = TimerEventDefinition.parse_iso_duration(duration)
    return (start + TimerEventDefinition.get_timedelta_from_start(parsed, start)).isoformat()


def start_of_day(day: str) -> str:
    """09:00 UK time on the given date (YYYY-MM-DD), as an aware UTC ISO string."""
    local = datetime.combine(datetime.fromisoformat(day).date(), REVIEW_TIME, tzinfo=LOCAL_ZONE)
    return as_utc(local).isoformat()


def now_iso() -> str:
    return now().isoformat()


SCRIPT_HELPERS = {"iso_after": iso_after, "start_of_day": start_of_day, "now_iso": now_iso}


class AppScriptEngine(PythonScriptEngine):
    """Scripts see task data plus SCRIPT_HELPERS; service tasks call handlers by operator name."""

    def __init__(self):
        super().__init__(environment=TaskDataEnvironment(dict(SCRIPT_HELPERS)))
        self.operators = handlers.load_all()

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
