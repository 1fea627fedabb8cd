"""Starting a called process (a service request, a contribution) for a row already committed."""
from __future__ import annotations

from app.engine.errors import EpisodeNotOpen, NotWaitingForMessage

REFUSALS = (NotWaitingForMessage, EpisodeNotOpen)


def start(runtime, model, row_id: int, episode_id: int, message: str, actor_id: int) -> None:
    """Send the episode the message that starts the row's process. The row was committed first so
    the process finds it; if the episode will not take the message, the row is marked cancelled
    and the refusal (one of REFUSALS) is raised for the caller to explain."""
    try:
        runtime.engine.send_message(episode_id, message, {"id": row_id}, actor_id)
    except REFUSALS:
        with runtime.db.session() as session:
            session.get(model, row_id).status = "cancelled"
        raise
