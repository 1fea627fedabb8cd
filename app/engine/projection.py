"""What a step records about a workflow so nobody has to load it to ask: the ready user tasks
(with role, assignee and due date), the next timer due time, the stage."""
from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.clock import now
from app.models import Contribution, Episode, HumanTask, ServiceRequest

from .forms import form_files
from .process_dates import iso_after
from .lanes import PERSON_LANES, assignee_for

TIMER_TYPES = ("DurationTimerEventDefinition", "TimeDateEventDefinition", "CycleTimerEventDefinition")
STAGE_SUBPROCESSES = ("preparation", "assessment", "delivery", "closure")


def next_timer_at(workflow: BpmnWorkflow) -> datetime | None:
    """The earliest due time of any waiting timer, read without firing anything."""
    due = [TimerEventDefinition.get_datetime(ev.value) for ev in workflow.waiting_events()
           if ev.event_type in TIMER_TYPES and isinstance(ev.value, str)]
    return min(due) if due else None


def stage_of(workflow: BpmnWorkflow) -> str:
    if workflow.is_completed():
        return "closed"
    active = {sp.spec.name for sp in workflow.subprocesses.values() if not sp.is_completed()}
    for stage in reversed(STAGE_SUBPROCESSES):
        if stage in active:
            return stage
    return "preparation"


def _timer_due(task) -> datetime | None:
    event = getattr(task.task_spec, "event_definition", None)
    value = task.internal_data.get("event_value")
    if isinstance(event, TimerEventDefinition) and task.state == TaskState.WAITING and isinstance(value, str):
        return TimerEventDefinition.get_datetime(value)
    return None


def _protection_due(task) -> datetime | None:
    """The 48-hour limit of a child-protection case runs from the moment the concern is recorded, but
    its timer waits on the assessment, which starts only once consent is given: until then (obtaining
    consent) the steps before the assessment are due by that same limit, worked out as the timer will be."""
    data = task.data
    record, limit = data.get("child_protection_record"), data.get("child_protection_time_limit")
    if data.get("proceed_to_assessment") or not isinstance(record, dict) or not isinstance(limit, str):
        return None
    recorded_at = record.get("recorded_at")
    if not isinstance(recorded_at, str):
        return None
    try:
        return datetime.fromisoformat(iso_after(recorded_at, limit))
    except (TypeError, ValueError):  # a process whose limit is not an ISO duration: no date rather than a failure
        return None


def due_at(task) -> datetime | None:
    """A user task is due when the first boundary timer on it, or on a subprocess around it, fires;
    before the assessment of a child-protection case, by the case's 48-hour limit."""
    dues = []
    current = task
    while current is not None:
        parent = current.parent
        if parent is not None and isinstance(parent.task_spec, BoundaryEventSplit):
            dues += [d for sibling in parent.children if sibling is not current
                     if (d := _timer_due(sibling)) is not None]
        workflow = current.workflow
        parent_task_id = getattr(workflow, "parent_task_id", None)
        current = workflow.top_workflow.get_task_from_id(parent_task_id) if parent_task_id else None
    if not dues and (protection := _protection_due(task)) is not None:
        dues.append(protection)
    return min(dues) if dues else None


def ready_user_tasks(workflow: BpmnWorkflow):
    return workflow.get_tasks(state=TaskState.READY, manual=True)


def _called_by(task) -> tuple[int | None, int | None]:
    """(service request id, contribution id) of a task that runs in one of those called processes."""
    name = task.workflow.spec.name
    key = {"service_request": "service_request", "contribution": "contribution"}.get(name)
    reference = task.data.get(key) if key else None
    number = reference.get("id") if isinstance(reference, dict) else None
    if number is None:
        return None, None
    return (int(number), None) if key == "service_request" else (None, int(number))


def _owner_of(session: Session, row: HumanTask) -> int | None:
    if row.service_request_id is not None:
        request = session.get(ServiceRequest, row.service_request_id)
        return request.requested_by_id if request else None
    if row.contribution_id is not None:
        contribution = session.get(Contribution, row.contribution_id)
        return contribution.contributor_id if contribution else None
    return None


def _called_work_cancelled(session: Session, request_id: int | None, contribution_id: int | None) -> bool:
    row = (session.get(ServiceRequest, request_id) if request_id is not None
           else session.get(Contribution, contribution_id) if contribution_id is not None else None)
    return row is not None and row.status == "cancelled"


def cancel_called_work(session: Session, episode: Episode) -> None:
    """An episode that ends takes its unanswered requests and unfinished contributions with it."""
    if episode.is_open:
        return
    session.execute(update(ServiceRequest).where(
        ServiceRequest.episode_id == episode.id, ServiceRequest.status.in_(("draft", "sent", "more_information")))
        .values(status="cancelled"))
    session.execute(update(Contribution).where(
        Contribution.episode_id == episode.id, Contribution.status.in_(("invited", "submitted", "returned")))
        .values(status="cancelled"))


def sync_human_tasks(session: Session, episode: Episode, workflow: BpmnWorkflow, stage: str,
                     ready_rows: list[HumanTask] | None = None) -> list[HumanTask]:
    """Bring the human_task rows in line with the workflow's ready user tasks. `ready_rows`: the
    episode's ready rows as read earlier in this transaction (the timer loop reads a batch's at once)."""
    ready = {str(t.id): t for t in ready_user_tasks(workflow)}
    if ready_rows is None:
        ready_rows = session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id,
                                                             HumanTask.status == "ready"))
    rows = {row.task_id: row for row in ready_rows if row.status == "ready"}
    for task_id, row in rows.items():
        if task_id not in ready:
            row.status = "cancelled"  # taken away by an event (deadline, withdrawal, deletion)
            row.completed_at = now()
    result = []
    for task_id, task in ready.items():
        row = rows.get(task_id)
        due = due_at(task)
        if row is None:
            schema_file, ui_file = form_files(task.task_spec)
            request_id, contribution_id = _called_by(task)
            if _called_work_cancelled(session, request_id, contribution_id):
                continue  # cancelled outside its process (a consent change): its tasks stay closed
            row = HumanTask(service_request_id=request_id, contribution_id=contribution_id,
                episode_id=episode.id, task_id=task_id, name=task.task_spec.bpmn_id or task.task_spec.name,
                title=task.task_spec.bpmn_name or task.task_spec.name, lane=task.task_spec.lane,
                form=schema_file, ui_form=ui_file, status="ready", created_at=now(), due_at=due)
            session.add(row)
        elif due is not None and (row.due_at is None or due < row.due_at):
            row.due_at = due
        # A due date, once set, stays: a task whose deadline fired stays overdue.
        row.stage = stage
        if row.lane in PERSON_LANES and row.reassigned_by_id is None:
            row.assigned_user_id = assignee_for(row.lane, episode, _owner_of(session, row))
        # Tasks in a role's lane stay with whoever claimed them (or with nobody).
        result.append(row)
    session.flush()
    return result


def diagram_positions(workflow: BpmnWorkflow, completed_user_tasks: set[str]) -> dict[str, list[str]]:
    """BPMN ids of the done, active and failed elements. The state holds the latest instance of each
    step done (pruning.py drops older ones); the completed user tasks, from our own table, name the
    user tasks done however long ago."""
    done, active, errored = set(completed_user_tasks), set(), set()
    for task in workflow.get_tasks():
        bpmn_id = getattr(task.task_spec, "bpmn_id", None)
        if not bpmn_id:
            continue
        if task.state == TaskState.COMPLETED:
            done.add(bpmn_id)
        elif task.state == TaskState.ERROR:
            errored.add(bpmn_id)
        elif task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
            active.add(bpmn_id)
    return {"done": sorted(done - active - errored), "active": sorted(active - errored),
            "errored": sorted(errored)}
