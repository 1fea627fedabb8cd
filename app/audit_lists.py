"""Audit rows for pages that list children: one row per page view, naming the episodes shown.

A list shows a child's name or date of birth for many episodes at once; the trail must answer
"who saw this child's details, and where" for lists as it does for an episode's own page. The rows
carry ids only (never names), so the trail itself holds no more personal data than it must.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.audit import record
from app.models import AuditEvent

LISTED = "episodes_listed"


def episodes_shown(session: Session, actor_id: int | None, page: str, episode_ids: Iterable[int | None], *,
                   action: str = LISTED, **detail) -> AuditEvent | None:
    """Record that `page` showed the children of `episode_ids` to `actor_id`.

    With the default action a page that showed nobody writes nothing; a page whose view is already
    an audited event of its own (an index search) passes that `action`, so the one row says both."""
    shown = sorted({episode_id for episode_id in episode_ids if episode_id is not None})
    if action == LISTED and not shown and not any(detail.values()):
        return None
    # A page about one episode is also found in that episode's own trail.
    return record(session, action, actor_id=actor_id, episode_id=shown[0] if len(shown) == 1 else None,
                  page=page, episodes=shown, **detail)
