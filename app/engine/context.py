"""The context a step gives to handlers: the session, the episode, who acts, and helpers
that write artefacts, outbox messages and audit rows into the step's transaction."""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, outbox
from app.clock import now
from app.config import Config
from app.models import Artefact, Episode, HumanTask, User


@dataclass
class StepContext:
    session: Session
    episode: Episode
    config: Config
    actor_id: int | None = None
    task_id: str | None = None  # the SpiffWorkflow task a handler runs for
    deleted: bool = False  # set when a handler purged the episode
    outbox: list[int] = field(default_factory=list)  # the ids of the messages the step wrote

    @property
    def now(self) -> datetime:
        return now()

    @property
    def actor(self) -> User | None:
        return self.session.get(User, self.actor_id) if self.actor_id else None

    def submission(self, human_task_id: int) -> HumanTask:
        """The form a person submitted for a user task of this episode."""
        task = self.session.get(HumanTask, int(human_task_id))
        if task is None or task.episode_id != self.episode.id or task.submitted_data is None:
            raise LookupError(f"no submitted form {human_task_id} in episode {self.episode.id}")
        return task

    def add_artefact(self, kind: str, data: dict, *, human_task: HumanTask | None = None,
                     created_by_id: int | None = None) -> Artefact:
        latest = self.session.scalar(
            select(func.max(Artefact.version)).where(Artefact.episode_id == self.episode.id, Artefact.kind == kind))
        artefact = Artefact(
            episode_id=self.episode.id, kind=kind, version=(latest or 0) + 1, data=data,
            human_task_id=human_task.id if human_task else None,
            created_by_id=created_by_id or (human_task.completed_by_id if human_task else self.actor_id),
            created_at=now())
        self.session.add(artefact)
        self.session.flush()
        return artefact

    def notify(self, kind: str, recipient: str | None, subject: str, body: str, *,
               channel: str = "email", payload: dict | None = None) -> int | None:
        """Queue a message for delivery after the step commits (returns its id). Never holds personal
        data of the child: messages name the episode reference only."""
        if not recipient:
            return None
        key = f"episode-{self.episode.id}:{self.task_id or 'step'}:{kind}:{recipient}"
        message_id, written = outbox.write_once(self.session, episode_id=self.episode.id, channel=channel,
                                                kind=kind, recipient=recipient, subject=subject, body=body,
                                                payload=payload, idempotency_key=key)
        if written:
            self.outbox.append(message_id)
        return message_id

    def audit(self, action: str, **detail) -> None:
        audit.record(self.session, action, actor_id=self.actor_id, episode_id=self.episode.id, **detail)

    # People the process talks to.
    def administrator_email(self) -> str:
        return self.episode.authority.admin_email or self.config.admin_email

    def lead_professional(self) -> User:
        return self.episode.lead_professional or self.episode.originator


_current: ContextVar[StepContext | None] = ContextVar("ecaf_step", default=None)


def current_step() -> StepContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("a service task ran outside an engine step")
    return ctx


def enter_step(ctx: StepContext):
    return _current.set(ctx)


def leave_step(token) -> None:
    _current.reset(token)
