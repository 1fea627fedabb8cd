"""The engine: every step (start, complete a task, receive a message, fire timers, retry) loads
the episode's workflow, advances it and saves everything it changed in one transaction. A process
kept beside an episode's, on a row of its own, is stepped by `own_processes` (own_processes.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Protocol
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, object_session
from sqlalchemy.orm.exc import StaleDataError

from app import audit, membership, metrics
from app.clock import now
from app.config import Config
from app.db import Database
from app.models import OPEN_STATUSES, Child, Episode, HumanTask, User

from . import forms as form_tools
from . import step_retries
from .context import StepContext, enter_step, leave_step
from .follow_up import TASK_STATUSES, WAKEABLE, keep_only_follow_up, running_status, takes_steps
from .errors import (EpisodeNotFound, EpisodeNotOpen, FormInvalid, NothingToRetry, NotPermitted, NotWaitingForMessage,
                     OpenEpisodeExists, TaskAlreadyDone, TaskNotFound, TaskNotReady)
from .library import MAIN_PROCESS, SPECS, current_version, forms_of
from .own_processes import OwnProcesses
from .projection import cancel_called_work, diagram_positions, next_timer_at, stage_of, sync_human_tasks
from .pruning import prune
from .scripting import SCRIPT_ENGINE
from .serializer import SERIALIZER_VERSION, dump_state, load_state

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """Background work that follows a committed step (see app.jobs)."""

    def episode_stepped(self, episode_id: int, next_timer_at: datetime | None) -> None: ...

    def messages_queued(self, message_ids: list[int]) -> None: ...


# The caller's policy for a step on a task: asked inside the step's transaction (see complete_task).
Guard = Callable[[Session, HumanTask], bool]
Namer = Callable[[Session, str], bool | str]  # who an `ecaf-user-email` answer may name (forms.validate)


@dataclass
class StepResult:
    episode_id: int
    status: str
    stage: str
    next_timer_at: datetime | None
    error: str | None = None
    ready_tasks: list[int] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)
    assignees: dict[int, int | None] = field(default_factory=dict)  # ready task id -> its assigned user

    def next_task_for(self, user_id: int) -> int | None:
        """The user's first ready task in this episode after the step (a page goes straight on to it)."""
        return next((task for task in self.ready_tasks if self.assignees.get(task) == user_id), None)


class Engine:
    def __init__(self, db: Database, config: Config, dispatcher: Dispatcher | None = None):
        self.db = db
        self.config = config
        self.dispatcher = dispatcher
        # Pauses between tries of a step after a transient database error (see step_retries).
        self.retry_pauses = step_retries.PAUSES
        self.own_processes = OwnProcesses(config)  # processes kept beside an episode's (a decision to share)

    # ------------------------------------------------------------------ public steps
    def start_episode(self, *, child_id: int, originator_id: int, process_id: str = MAIN_PROCESS,
                      sibling_group: str | None = None) -> StepResult:
        result = self._observed("start", None, lambda: self._start(child_id, originator_id, process_id,
                                                                    sibling_group))
        self._after_commit(result)
        return result

    def _start(self, child_id: int, originator_id: int, process_id: str, sibling_group: str | None) -> StepResult:
        try:
            with self.db.session() as session:
                child = session.get(Child, child_id)
                if child is None:
                    raise EpisodeNotFound(f"there is no child record {child_id}")
                if session.get(User, originator_id) is None:
                    raise EpisodeNotFound(f"there is no user {originator_id}")
                self._refuse_second_episode(session, child_id)
                version = current_version(session, process_id)
                spec, subprocess_specs = SPECS.get(version)
                started = now()
                episode = Episode(
                    child_id=child.id, authority_id=child.home_authority_id, process_version_id=version.id,
                    sibling_group=sibling_group, status="open", stage="preparation", originator_id=originator_id,
                    started_at=started, updated_at=started)
                session.add(episode)
                session.flush()
                workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SCRIPT_ENGINE)
                workflow.get_next_task(spec_name="Start").set_data(
                    episode_id=episode.id, child_id=child.id, originator_id=originator_id,
                    started_at=started.isoformat())
                audit.record(session, "episode_started", actor_id=originator_id, episode_id=episode.id,
                             process_version=version.label)
                membership.add(session, episode, session.get(User, originator_id), "originator", by_id=originator_id)
                result = self._advance_and_save(session, episode, workflow, originator_id, lambda *_: None)
        except IntegrityError:
            # Two starts raced: the database's one-open-episode index let only one through.
            with self.db.session() as session:
                self._refuse_second_episode(session, child_id)
            raise
        return result

    def complete_task(self, episode_id: int, human_task_id: int, data: dict, user_id: int | None,
                      guard: Guard | None = None, named: Namer | None = None) -> StepResult:
        """Complete a ready user task with the submitted form. Invalid data changes nothing.
        `guard(session, task)` is the caller's policy, asked in this step's transaction with the episode
        locked, so access lost since the form was opened is refused here (NotPermitted). `named(session,
        email)` answers the `ecaf-user-email` format in that transaction (by default: any active account)."""
        def complete(session: Session, episode: Episode, workflow: BpmnWorkflow, ctx: StepContext) -> None:
            row = ready_row(session, episode, human_task_id, guard)
            task = workflow.get_task_from_id(UUID(row.task_id))
            if task.state != TaskState.READY:
                raise TaskNotReady(f"the task '{row.title}' is not waiting for input")
            schema = form_tools.load_form(forms_of(episode.process_version), row.form)
            submitted = form_tools.strip_blanks(data or {})
            errors = form_tools.validate(schema, submitted,
                                         user_exists=lambda email: (named or user_exists)(session, email))
            if errors:
                raise FormInvalid(errors)
            row.status, row.completed_at, row.completed_by_id = "completed", now(), user_id
            row.submitted_data, row.draft = submitted, None
            flags = form_tools.task_data_from(schema, submitted)
            task.set_data(**{row.name: {**flags, "submission": row.id}})
            audit.record(session, "task_completed", actor_id=user_id, episode_id=episode.id, task=row.name)
            task.run()

        try:
            return self._step(episode_id, user_id, complete, allow_statuses=TASK_STATUSES, kind="complete")
        except StaleDataError as exc:
            raise TaskAlreadyDone("someone else completed this task at the same moment") from exc

    def save_draft(self, episode_id: int, human_task_id: int, data: dict | Callable[[dict | None], dict],
                   user_id: int | None, guard: Guard | None = None) -> None:
        """Keep what was typed so far; drafts are not validated and do not advance the process.

        `data` is the whole draft, or a function of the draft as it stands under the episode's lock
        (a section merged into what another page saved meanwhile is not lost)."""

        def keep() -> None:
            with self.db.session() as session:
                episode = self._open_episode(session, episode_id, TASK_STATUSES)
                row = ready_row(session, episode, human_task_id, guard)
                row.draft = data(row.draft) if callable(data) else data
                audit.record(session, "draft_saved", actor_id=user_id, episode_id=episode.id, task=row.name)

        step_retries.with_retries("draft", keep, episode_id=episode_id, pauses=self.retry_pauses)

    def send_message(self, episode_id: int, name: str, payload: dict | None, actor_id: int | None) -> StepResult:
        """Deliver a BPMN message (e.g. `consent_withdrawn`) to the episode's process."""

        def deliver(session, episode, workflow, ctx):
            waiting = {e.name for e in workflow.waiting_events() if e.event_type == "MessageEventDefinition"}
            if name not in waiting:
                raise NotWaitingForMessage(f"episode {episode.reference} is not waiting for '{name}' now")
            workflow.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload or {}))
            audit.record(session, "message_received", actor_id=actor_id, episode_id=episode.id, message=name)

        return self._step(episode_id, actor_id, deliver, kind="message")

    def wake(self, episode_id: int) -> StepResult | None:
        """Fire the episode's due timers. Returns None when nothing was due (or another worker has it).

        Raises StepInterrupted when the database kept failing: the episode is left exactly as it was,
        still due, for the next pass of the timer loop."""
        due: list = []

        def fire() -> StepResult | None:
            with self.db.session() as session:
                episode = self._lock(session, episode_id, skip_locked=True)
                due[:] = [episode.next_timer_at] if episode is not None else []
                return self.wake_claimed(session, episode) if episode is not None else None

        result = self._observed("wake", episode_id, fire)
        if result is not None:
            metrics.timer_fired((now() - due[0]).total_seconds())
            self._after_commit(result)
        return result

    def wake_claimed(self, session: Session, episode: Episode,
                     ready_rows: list[HumanTask] | None = None) -> StepResult | None:
        """Fire the due timers of an episode the caller has locked in `session`, inside the caller's
        transaction (the timer loop wakes a claimed batch in one transaction, each episode in a
        savepoint: app/jobs/timers.py). Returns None when nothing is due. The caller commits, then
        hands the result to `after_wake`. `ready_rows`: the episode's ready task rows, when the caller
        read them (for its whole batch at once) in this transaction."""
        if (episode.status not in WAKEABLE or episode.next_timer_at is None
                or episode.next_timer_at > now()):
            return None
        return self._advance_and_save(session, episode, self._load(episode), None, lambda *_: None, ready_rows)

    def after_wake(self, result: StepResult) -> None:
        """After the commit of a wake done by `wake_claimed`: its messages go for delivery."""
        self._after_commit(result)

    def retry(self, episode_id: int, actor_id: int | None, data: dict | None = None,
              reason: str | None = None) -> StepResult:
        """Run the failed step again, optionally after correcting its task data."""

        def rerun(session, episode, workflow, ctx):
            failed = workflow.get_tasks(state=TaskState.ERROR)
            if not failed:
                raise NothingToRetry(f"episode {episode.reference} has no failed step")
            for task in failed:
                if data:
                    task.set_data(**data)
                task._set_state(TaskState.READY)
            audit.record(session, "step_retried", actor_id=actor_id, episode_id=episode.id,
                         tasks=[t.task_spec.bpmn_id or t.task_spec.name for t in failed], reason=reason,
                         corrected=sorted(data) if data else [])
            episode.status, episode.last_error, episode.error_task = running_status(episode), None, None

        return self._step(episode_id, actor_id, rerun, allow_statuses=TASK_STATUSES, kind="retry")

    # ------------------------------------------------------------------ the step
    def _step(self, episode_id: int, actor_id: int | None, action: Callable,
              allow_statuses: tuple[str, ...] = ("open", "error"), kind: str = "repair") -> StepResult:
        """One step on an existing episode; `kind` names it in metrics and logs (repair.py's
        administrators' steps are "repair")."""
        def run() -> StepResult:
            with self.db.session() as session:
                episode = self._open_episode(session, episode_id, allow_statuses)
                workflow = self._load(episode)
                return self._advance_and_save(session, episode, workflow, actor_id, action)

        result = self._observed(kind, episode_id, run)
        self._after_commit(result)
        return result

    def _observed(self, kind: str, episode_id: int | None, run: Callable):
        """One step: its transaction run again after transient database errors, measured and logged."""
        return step_retries.observed(kind, run, episode_id=episode_id, pauses=self.retry_pauses)

    def _advance_and_save(self, session, episode, workflow, actor_id, action,
                          ready_rows: list[HumanTask] | None = None) -> StepResult:
        ctx = StepContext(session=session, episode=episode, config=self.config, actor_id=actor_id)
        token = enter_step(ctx)
        try:
            action(session, episode, workflow, ctx)
            error = self._run_engine(workflow)
        finally:
            leave_step(token)
        synced = self._save(session, episode, workflow, ctx, error, ready_rows)
        session.flush()
        if synced is None:  # the episode was purged: whatever rows are left say what is ready
            synced = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id,
                                                             HumanTask.status == "ready")).all()
        ready = {row.id: row.assigned_user_id for row in sorted(synced, key=lambda row: row.id)}
        return StepResult(episode.id, episode.status, episode.stage, episode.next_timer_at,
                          episode.last_error, list(ready), list(ctx.outbox), ready)

    @staticmethod
    def _run_engine(workflow: BpmnWorkflow) -> WorkflowException | None:
        try:
            workflow.refresh_timers()
            workflow.do_engine_steps()
        except WorkflowException as exc:
            if step_retries.transient_kind(exc):
                raise  # not the handler's fault: the whole step rolls back and runs again
            log.warning("workflow step failed: %s", exc)
            return exc
        return None

    def _save(self, session: Session, episode: Episode, workflow: BpmnWorkflow, ctx: StepContext,
              error: WorkflowException | None, ready_rows: list[HumanTask] | None = None) -> list[HumanTask] | None:
        """Store the workflow and what it projects; returns the episode's ready task rows (None when
        a handler purged the episode)."""
        episode.updated_at = now()
        if ctx.deleted:
            # A handler purged the episode: keep only the stub.
            episode.state, episode.serializer_version, episode.next_timer_at = None, None, None
            episode.status, episode.stage = "deleted", "closed"
            return None
        episode.stage = stage_of(workflow)
        failed = workflow.get_tasks(state=TaskState.ERROR)
        if failed:
            task = failed[0]
            episode.status = "closed" if episode.closed_at else "error"  # a closed episode never reopens
            episode.error_task = task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name
            episode.last_error = str(error) if error else episode.last_error or "a step failed"
        elif workflow.is_completed():
            episode.status, episode.last_error, episode.error_task = "closed", None, None
            episode.closed_at = episode.closed_at or now()
            episode.outcome = episode.outcome or "closed"
        elif episode.closed_at is not None:
            keep_only_follow_up(episode, workflow)  # closed, with its six-month outcome check to come
        elif episode.status == "error":
            episode.status, episode.last_error, episode.error_task = "open", None, None
        prune(workflow)  # finished history lives in our tables, not in the state (pruning.py)
        episode.state = dump_state(workflow)  # after the follow-up has ended the other branches
        episode.serializer_version = SERIALIZER_VERSION
        episode.next_timer_at = None if workflow.is_completed() else next_timer_at(workflow)
        ready = sync_human_tasks(session, episode, workflow, episode.stage, ready_rows)
        cancel_called_work(session, episode)
        return ready

    def _after_commit(self, result: StepResult) -> None:
        if self.dispatcher is None:
            return
        try:
            self.dispatcher.episode_stepped(result.episode_id, result.next_timer_at)
            if result.outbox:
                self.dispatcher.messages_queued(result.outbox)
        except Exception as exc:  # the delivery loop sends what a lost job would have: one line, no traceback
            log.warning("could not queue the messages of episode %s for delivery (%s: %s); the next delivery "
                        "pass sends them", result.episode_id, type(exc).__name__, exc)

    # ------------------------------------------------------------------ helpers
    def positions(self, episode: Episode) -> dict[str, list[str]]:
        """Where the episode is in its diagram: BPMN ids of done, active and failed elements."""
        if not episode.state:
            return {"done": [], "active": [], "errored": []}
        return diagram_positions(self._load(episode), self._completed_user_tasks(episode))

    def _completed_user_tasks(self, episode: Episode) -> set[str]:
        query = select(HumanTask.name).distinct().where(HumanTask.episode_id == episode.id,
                                                        HumanTask.status == "completed")
        session = object_session(episode)
        if session is not None:
            return set(session.scalars(query))
        with self.db.session() as session:
            return set(session.scalars(query))

    def _load(self, episode: Episode) -> BpmnWorkflow:
        spec, subprocess_specs = SPECS.get(episode.process_version)
        workflow = load_state(episode.state, episode.serializer_version, spec, subprocess_specs)
        workflow.script_engine = SCRIPT_ENGINE  # never serialized: set after every load
        return workflow

    def _lock(self, session: Session, episode_id: int, skip_locked: bool = False) -> Episode | None:
        # The version comes with the episode (its small columns: the files are deferred), for _load.
        query = select(Episode).where(Episode.id == episode_id).options(
            joinedload(Episode.process_version, innerjoin=True))
        if self.db.is_postgresql:
            query = query.with_for_update(skip_locked=skip_locked, of=Episode)
        return session.scalar(query)

    def _open_episode(self, session: Session, episode_id: int,
                      allow_statuses: tuple[str, ...] = ("open", "error")) -> Episode:
        episode = self._lock(session, episode_id)
        if episode is None:
            raise EpisodeNotFound(f"there is no episode {episode_id}")
        if not takes_steps(session, episode, allow_statuses):
            raise EpisodeNotOpen(f"episode {episode.reference} is {episode.status}")
        return episode

    @staticmethod
    def _refuse_second_episode(session: Session, child_id: int) -> None:
        existing = session.scalar(select(Episode).where(Episode.child_id == child_id,
                                                        Episode.status.in_(OPEN_STATUSES)))
        if existing is not None:
            raise OpenEpisodeExists(existing.id, existing.reference)


def ready_row(session: Session, episode: Episode, human_task_id: int, guard: Guard | None = None) -> HumanTask:
    """The episode's task, when it may be worked on now (TaskNotFound, NotPermitted, TaskAlreadyDone, TaskNotReady)."""
    row = session.get(HumanTask, human_task_id)
    if row is None or row.episode_id != episode.id:
        raise TaskNotFound(f"episode {episode.reference} has no task {human_task_id}")
    if guard is not None and not guard(session, row):
        raise NotPermitted("you may no longer work on this task")
    if row.status == "completed":
        who = row.completed_by.full_name if row.completed_by else "someone"
        raise TaskAlreadyDone(f"'{row.title}' was already completed by {who}")
    if row.status != "ready":
        raise TaskNotReady(f"'{row.title}' is no longer waiting for input ({row.status})")
    return row


def user_exists(session: Session, email: str) -> bool:
    """Whether an active account has this email (the forms' `ecaf-user-email` format)."""
    return session.scalar(select(User.id).where(func.lower(User.email) == email.lower(), User.active)) is not None
