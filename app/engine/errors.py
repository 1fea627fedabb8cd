"""What the engine says when it refuses to act. Every refusal changes nothing."""
from __future__ import annotations


class EngineError(Exception):
    """Base class: a clear message for the person or program that asked."""


class EpisodeNotFound(EngineError):
    pass


class EpisodeNotOpen(EngineError):
    """The episode is closed, deleted or suspended and cannot take this step."""


class TaskNotFound(EngineError):
    pass


class TaskNotReady(EngineError):
    pass


class TaskAlreadyDone(EngineError):
    """Someone else completed the task first (or it was completed earlier)."""


class NotPermitted(EngineError):
    """The caller's guard refused the step: the person may no longer do this (nothing changed)."""


class FormInvalid(EngineError):
    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field'] or 'form'}: {e['message']}" for e in errors))


class OpenEpisodeExists(EngineError):
    def __init__(self, episode_id: int, reference: str):
        self.episode_id = episode_id
        self.reference = reference
        super().__init__(f"the child already has an open episode ({reference})")


class NotWaitingForMessage(EngineError):
    pass


class NothingToRetry(EngineError):
    pass


class ProcessInvalid(EngineError):
    """A process model that cannot be deployed; `problems` names each element at fault."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the process cannot be deployed:\n- " + "\n- ".join(problems))


class NoProcessDeployed(EngineError):
    pass


class StepInterrupted(EngineError):
    """The database could not finish the step just now (a lock or statement timeout, a deadlock, a
    lost connection), even after a few tries: nothing changed, and the same step can be tried again.
    The web answers 503 with a plain message; a timer's wake is simply left due for the next pass."""

    def __init__(self, message: str, kind: str = "connection"):
        self.kind = kind
        super().__init__(message)
