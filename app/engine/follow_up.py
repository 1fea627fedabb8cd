"""A CAF closed with outcomes met stays in its workflow for one more thing: the six-month outcome
check, modelled inside the Closure stage after the episode is closed. Everything else the workflow
was still waiting for (requests to services, contributions, messages) ends with the closure, as the
terminate end event would end it: a closed episode stays closed for every other purpose."""
from __future__ import annotations

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Episode, HumanTask
from app.models.episode import MOVED_OUTCOME

CLOSURE = "closure"  # the stage whose remaining path is the follow-up
# Where a step may complete a ready task or fire a timer: in a closed episode, only its outcome check waits.
TASK_STATUSES = WAKEABLE = ("open", "error", "closed")


def end_other_branches(workflow: BpmnWorkflow) -> int:
    """Cancel every unfinished top-level branch except the path through the Closure stage; returns how
    many tasks were cancelled. Cancelling a called process cancels its tasks and timers too."""
    closure = next((task for task in workflow.tasks.values()
                    if task.task_spec.name == CLOSURE and task.state == TaskState.STARTED), None)
    if closure is None:
        return 0
    keep = {task.id for task in closure}  # the closure task and every task after it
    node = closure
    while node is not None:
        keep.add(node.id)
        node = node.parent
    cancelled = 0
    for task in list(workflow.tasks.values()):
        if task.id in keep or task.has_state(TaskState.FINISHED_MASK):
            continue
        if task.parent is not None and task.parent.id not in keep and not task.parent.has_state(
                TaskState.FINISHED_MASK):
            continue  # cancelled with its unfinished parent
        task.cancel()
        cancelled += 1
    return cancelled


def running_status(episode) -> str:
    """The status of an episode whose failed step is run again: a closed one stays closed (a new CAF may
    already be open for the child)."""
    return "closed" if episode.closed_at else "open"


def keep_only_follow_up(episode: Episode, workflow: BpmnWorkflow) -> None:
    """After a step that leaves a closed episode's workflow running: only the follow-up goes on."""
    end_other_branches(workflow)
    episode.status, episode.stage, episode.last_error, episode.error_task = "closed", "closed", None, None


def following_up(session: Session, episode: Episode) -> bool:
    """Whether a closed episode still has its outcome check to come (a timer) or to answer (a ready
    task); any other closed episode takes no more steps."""
    if episode.outcome == MOVED_OUTCOME:  # its workflow goes on in the authority it moved to, if anywhere
        return False
    if episode.next_timer_at is not None or episode.last_error:
        return True
    return session.scalar(select(HumanTask.id).where(HumanTask.episode_id == episode.id,
                                                     HumanTask.status == "ready").limit(1)) is not None


def takes_steps(session: Session, episode: Episode, allowed: tuple[str, ...] = TASK_STATUSES) -> bool:
    """Whether a step may run on `episode`: its status allowed, and a closed one only for its outcome check."""
    return episode.status in allowed and (episode.status != "closed" or following_up(session, episode))
