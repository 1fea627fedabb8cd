"""Moving an episode's workflow to a new episode in another authority.

The workflow state travels as it is, with the same task instance ids, so deadlines already running
keep their due times. Only the ids of our own rows that the task data carries (the episode, each
submitted form, each stored artefact) are renumbered to the rows of the new episode.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.models import Episode, HumanTask, ProcessVersion

from .lanes import PERSON_LANES
from .library import SPECS
from .projection import next_timer_at, stage_of, sync_human_tasks
from .runner import Engine, StepResult
from .scripting import SCRIPT_ENGINE
from .serializer import SERIALIZER_VERSION, dump_state, load_state


@dataclass
class Renumbering:
    """Old row id -> new row id, for each kind of row the task data names."""

    episode: tuple[int, int]
    tasks: dict[int, int] = field(default_factory=dict)
    artefacts: dict[int, int] = field(default_factory=dict)

    def apply(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if not isinstance(value, dict):
            return value
        tables = {"episode_id": dict([self.episode]), "submission": self.tasks, "artefact_id": self.artefacts}
        return {key: self._renumbered(tables.get(key), self.apply(v)) for key, v in value.items()}

    @staticmethod
    def _renumbered(table: dict[int, int] | None, value: Any) -> Any:
        if table is None or not isinstance(value, int) or isinstance(value, bool):
            return value
        return table.get(value, value)


def state_problem(version: ProcessVersion, state: dict, serializer_version: str) -> str | None:
    """Why this state cannot run on `version` here, or None when it loads."""
    if serializer_version != SERIALIZER_VERSION:
        # Older states would go through SpiffWorkflow's migrations, which eval timer expressions.
        return (f"the workflow state was written by serializer version {serializer_version}, "
                f"which this eCAF does not read (it reads only {SERIALIZER_VERSION})")
    try:
        spec, subprocess_specs = SPECS.get(version)
        load_state(json.dumps(state), serializer_version, spec, subprocess_specs)
    except Exception as exc:  # any damage to the state shows here, before anything is written
        return f"the workflow state does not fit process {version.label}: {type(exc).__name__}: {exc}"
    return None


def adopt_state(session: Session, episode: Episode, state: dict, serializer_version: str,
                renumbering: Renumbering) -> list[HumanTask]:
    """Give `episode` the workflow state (renumbered), its stage and next timer, and project its
    ready user tasks. Returns the ready task rows; the caller decides who does them."""
    spec, subprocess_specs = SPECS.get(episode.process_version)
    workflow = load_state(json.dumps(state), serializer_version, spec, subprocess_specs)
    workflow.script_engine = SCRIPT_ENGINE
    for task in workflow.get_tasks():
        task.data = renumbering.apply(task.data)
    for holder in [workflow, *workflow.subprocesses.values()]:
        holder.data = renumbering.apply(holder.data)
    episode.state, episode.serializer_version = dump_state(workflow), SERIALIZER_VERSION
    episode.stage = stage_of(workflow)
    episode.next_timer_at = None if workflow.is_completed() else next_timer_at(workflow)
    return sync_human_tasks(session, episode, workflow, episode.stage)


def is_person_lane(lane: str | None) -> bool:
    return lane in PERSON_LANES


def announce(engine: Engine, episode: Episode, outbox_ids: list[int]) -> None:
    """After the import commits: schedule the new episode's timers and deliver its messages."""
    engine._after_commit(StepResult(episode.id, episode.status, episode.stage, episode.next_timer_at,
                                    outbox=outbox_ids))
