"""Opening, saving and submitting a user task's form, with the policy checked on every call."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, joinedload

from app import audit, outcomes, policy
from app.engine import forms as form_tools
from app.engine.errors import EpisodeNotOpen, NotPermitted
from app.engine.follow_up import takes_steps
from app.engine.runner import Engine, StepResult, ready_row
from app.models import Artefact, Episode, HumanTask, User
from app.services import called_tasks, outcome_forms, person_choices
from app.services.episode_record import form_pair


# What a form page shows of its episode, read with the episode in one statement; not its workflow
# state (tens of KB that only a step reads).
FORM_PAGE_NEEDS = (joinedload(Episode.child), joinedload(Episode.authority), joinedload(Episode.process_version),
                   defer(Episode.state))


@dataclass
class OpenTask:
    task: HumanTask
    episode: Episode
    schema: dict
    ui: dict | None


def open_task(session: Session, user: User, task_id: int) -> OpenTask | None:
    """The task if `user` may complete it now; None otherwise (the caller answers 404)."""
    task = session.get(HumanTask, task_id)
    episode = policy.visible_episode(session, user, task.episode_id, options=FORM_PAGE_NEEDS) \
        if task is not None else None
    if task is None or episode is None or not policy.may_complete(user, task):
        audit.record(session, "access_denied", actor_id=user.id, asked_for=f"task {task_id}")
        return None
    schema, ui = form_pair(episode, task)
    if schema is None:
        return None
    schema, ui = called_tasks.form_for(session, episode, task, schema, ui)
    schema, ui = outcome_forms.form_for(session, episode, task, schema, ui)
    ui = person_choices.offer(session, episode, schema, ui)
    return OpenTask(task, episode, schema, ui)


def _may_complete(user_id: int):
    return lambda session, task: policy.may_complete_now(session, user_id, task)


def _may_complete_with(user_id: int, data: dict):
    """_may_complete, and the submitted outcomes checked against the plan in the same transaction."""
    def guard(session: Session, task: HumanTask) -> bool:
        if not _may_complete(user_id)(session, task):
            return False
        outcome_forms.refuse_problems(session, task, data)
        return True
    return guard


def _may_lead(session: Session, episode: Episode, email: str) -> bool | str:
    """The `ecaf-user-email` format of a task's form: it names the lead professional (the `person`
    answer, app/services/person_choices.py), who must be someone who can lead this CAF."""
    return person_choices.refusal(session, episode, email) or True


def complete(engine: Engine, user: User, episode_id: int, task_id: int, data: dict) -> StepResult:
    """Complete the task. The form was opened in an earlier request and access may have been lost
    since, so who may complete it is asked again inside the step (NotPermitted: nothing changed), and
    so is whether the lead professional named can still lead (FormInvalid: nothing changed)."""
    def may_lead(session: Session, email: str) -> bool | str:
        return _may_lead(session, session.get(Episode, episode_id), email)

    return engine.complete_task(episode_id, task_id, data, user.id, guard=_may_complete_with(user.id, data),
                                named=may_lead)


def save_draft(engine: Engine, user: User, episode_id: int, task_id: int,
               draft: dict | Callable[[dict | None], dict]) -> None:
    engine.save_draft(episode_id, task_id, draft, user.id, guard=_may_complete(user.id))


def hold_for_work(session: Session, user: User, episode_id: int, task_id: int) -> HumanTask:
    """The task with its episode and its row locked to the end of the transaction, when `user` may
    work on it now; otherwise raises as a step on it would (NotPermitted first: someone else learns
    nothing of the task; then EpisodeNotOpen, TaskAlreadyDone, TaskNotReady). For what is kept
    beside a step, in a transaction of its own: a file attached is not kept on a task nobody may work on."""
    fresh = {"populate_existing": True}
    episode = session.scalar(select(Episode).where(Episode.id == episode_id).with_for_update(of=Episode)
                             .execution_options(**fresh))
    task = session.scalar(select(HumanTask).where(HumanTask.id == task_id).with_for_update(of=HumanTask)
                          .execution_options(**fresh))
    if episode is None or task is None or task.episode_id != episode.id \
            or not policy.may_complete_now(session, user.id, task):
        raise NotPermitted("you may no longer work on this task")
    if not takes_steps(session, episode):  # the rule the step itself applies
        raise EpisodeNotOpen(f"episode {episode.reference} is {episode.status}")
    return ready_row(session, episode, task.id)


def claim(session: Session, user: User, task_id: int) -> HumanTask | None:
    """Take a role task for `user`, or None when they may not (the caller answers 404)."""
    task = session.get(HumanTask, task_id, with_for_update=True)
    user = session.get(User, user.id)  # the account as it is in this transaction
    episode = policy.visible_episode(session, user, task.episode_id) if task is not None else None
    if task is None or episode is None or not policy.may_claim(user, task, episode):
        return None
    task.assigned_user_id = user.id
    audit.record(session, "task_claimed", actor_id=user.id, episode_id=episode.id, task=task.name)
    return task


def release(session: Session, user: User, task_id: int) -> HumanTask | None:
    """Give a claimed role task back to the role, or None when `user` may not (the caller answers 404)."""
    task = session.get(HumanTask, task_id, with_for_update=True)
    user = session.get(User, user.id)
    if task is None or not policy.may_release(user, task):
        return None
    task.assigned_user_id = None
    audit.record(session, "task_released", actor_id=user.id, episode_id=task.episode_id, task=task.name)
    return task


def _put(data: dict, path: str, value) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(parts[-1], value)


def _has(schema: dict, path: str) -> bool:
    node = schema
    for part in path.split("."):
        node = (node.get("properties") or {}).get(part)
        if not isinstance(node, dict):
            return False
    return True


def prefill(session: Session, schema: dict, episode: Episode, user: User) -> dict:
    """What eCAF already knows, so nobody types it twice (only where the form has such a field).

    Read-only fields among these are the system's: they are set here again on every submission."""
    child = episode.child
    assessments = session.scalar(select(func.count()).select_from(Artefact).where(
        Artefact.episode_id == episode.id, Artefact.kind == "assessment")) \
        if _has(schema, "section_a_administration.version_number") else 0
    known = {
        "section_a_administration.date_started": episode.started_at.date().isoformat(),
        "section_a_administration.reference_number": episode.reference,
        "section_a_administration.version_number": (assessments or 0) + 1,
        "section_f_assessor.name": user.full_name,
        "section_f_assessor.role": user.job_title,
        "section_f_assessor.organisation": user.organisation.name if user.organisation else None,
        "section_f_assessor.contact_phone": user.phone,
        "section_f_assessor.email": user.email,
    }
    if child is not None:
        known.update({
            "section_b_child.given_names": child.given_names,
            "section_b_child.family_name": child.family_name,
            "section_b_child.date_of_birth": child.date_of_birth.isoformat() if child.date_of_birth else None,
            "section_b_child.address": child.address,
            "section_b_child.postcode": child.postcode,
        })
    if _has(schema, "headline_outcomes"):  # a plan agreed again starts from the outcomes it chose before
        known["headline_outcomes"] = outcomes.chosen(session, episode.id)
    data: dict = {}
    for path, value in known.items():
        if value and _has(schema, path):
            _put(data, path, value)
    return data


def submission_problems(session: Session, opened, data: dict, parse_problems: list[dict]) -> list[dict]:
    """What stops a task's form being submitted: its conversion and schema problems, then what the
    process it was called by asks of it (app/services/called_tasks.py)."""
    errors = all_problems(opened.schema, data, parse_problems,
                          lambda email: _may_lead(session, opened.episode, email))
    shown = {error["field"] for error in errors}
    errors += [e for e in outcome_forms.problems(session, opened.task, data) if e["field"] not in shown]
    return errors or called_tasks.problems(session, opened.task, form_tools.strip_blanks(data))


def all_problems(schema: dict, data: dict, parse_problems: list[dict], user_exists) -> list[dict]:
    """Conversion problems first, then the schema's own, one message per field."""
    seen = {p["field"] for p in parse_problems}
    checked = form_tools.validate(schema, form_tools.strip_blanks(data), user_exists=user_exists)
    return parse_problems + [e for e in checked if e["field"] not in seen]
