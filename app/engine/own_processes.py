"""Processes that run beside an episode's own, each kept on a row of its own (a decision to share:
processes/duty_to_share.bpmn). The episode's model is not changed to call them: the row holds the
process's version and saved state, and each step here runs inside the caller's transaction (the
service that owns it asks the policy first), with the episode's StepContext so handlers, audit and
outbox work exactly as in an episode's step. Only this module and runner.py load, advance and save
a workflow."""
from __future__ import annotations

from typing import Callable

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from app import audit
from app.config import Config
from app.models import Episode, ProcessVersion

from . import forms as form_tools
from .context import StepContext, enter_step, leave_step
from .errors import FormInvalid, TaskNotReady
from .library import SPECS, forms_of
from .projection import next_timer_at
from .scripting import SCRIPT_ENGINE
from .serializer import SERIALIZER_VERSION, dump_state, load_state


class OwnProcesses:
    """Start, complete a user task of, and wake a process kept on `row` (any model with the columns
    process_version, state, serializer_version and next_timer_at)."""

    def __init__(self, config: Config):
        self.config = config

    def start(self, session: Session, row, episode: Episode, version: ProcessVersion, actor_id: int | None,
              **data) -> list[int]:
        spec, subprocess_specs = SPECS.get(version)
        row.process_version = version
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SCRIPT_ENGINE)
        workflow.get_next_task(spec_name="Start").set_data(episode_id=episode.id, **data)
        return self._advance(session, row, episode, workflow, actor_id, lambda: None)

    def form(self, row, name: str) -> dict:
        """The JSON Schema of the user task `name` in the row's process version."""
        workflow = self._load(row)
        spec = next(s for s in workflow.spec.task_specs.values() if getattr(s, "bpmn_id", None) == name)
        schema_file, _ = form_tools.form_files(spec)
        return form_tools.load_form(forms_of(row.process_version), schema_file)

    def complete(self, session: Session, row, episode: Episode, name: str, submitted: dict,
                 user_id: int) -> list[int]:
        """Complete the READY user task `name` with a form already checked against its schema
        (FormInvalid otherwise; nothing changes). Its flags go to the workflow, its content stays in
        the caller's row."""
        schema = self.form(row, name)
        if errors := form_tools.validate(schema, submitted):
            raise FormInvalid(errors)
        workflow = self._load(row)
        task = next((t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == name), None)
        if task is None:
            raise TaskNotReady(f"'{name}' is not waiting for a decision")

        def run() -> None:
            task.set_data(**{name: form_tools.task_data_from(schema, submitted)})
            audit.record(session, "task_completed", actor_id=user_id, episode_id=episode.id,
                         task=task.task_spec.bpmn_name or name)
            task.run()

        return self._advance(session, row, episode, workflow, user_id, run)

    def wake(self, session: Session, row, episode: Episode) -> list[int]:
        """Fire the row's due timers (the caller found it due)."""
        return self._advance(session, row, episode, self._load(row), None, lambda: None)

    def _advance(self, session: Session, row, episode: Episode, workflow: BpmnWorkflow, actor_id: int | None,
                 action: Callable[[], None]) -> list[int]:
        """Run `action`, then the engine; a failing handler raises and the caller's transaction rolls
        back whole. Returns the ids of the outbox messages written."""
        ctx = StepContext(session=session, episode=episode, config=self.config, actor_id=actor_id)
        token = enter_step(ctx)
        try:
            action()
            workflow.refresh_timers()
            workflow.do_engine_steps()
        finally:
            leave_step(token)
        failed = workflow.get_tasks(state=TaskState.ERROR)
        if failed:
            raise RuntimeError(f"the step '{failed[0].task_spec.bpmn_name}' failed")
        row.state, row.serializer_version = dump_state(workflow), SERIALIZER_VERSION
        row.next_timer_at = None if workflow.is_completed() else next_timer_at(workflow)
        session.flush()
        return list(ctx.outbox)

    @staticmethod
    def _load(row) -> BpmnWorkflow:
        spec, subprocess_specs = SPECS.get(row.process_version)
        workflow = load_state(row.state, row.serializer_version, spec, subprocess_specs)
        workflow.script_engine = SCRIPT_ENGINE  # never serialized: set after every load
        return workflow
