"""Subject access: everything eCAF holds about one child, for its administrators."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.services import families
from app.models import AuditEvent, Child, Episode, IndexEntry, SearchRequestChild, User

from .common import authority_part, email_of, iso
from .export import (artefacts_part, child_part, consents_part, episode_part, index_entry_part, members_part,
                     process_part, tasks_part)


def subject_access(session: Session, child: Child, user: User) -> dict:
    """Everything eCAF holds about one child. The caller checks `policy.may_see_child`."""
    if not policy.may_see_child(session, user, child):
        raise PermissionError(f"user {user.id} may not see child {child.id}")
    episodes = session.scalars(select(Episode).where(Episode.child_id == child.id).order_by(Episode.id)).all()
    episode_ids = [e.id for e in episodes]
    document = {
        "format": "ecaf-subject-access",
        "generated_at": now().isoformat(),
        "generated_by": {"email": user.email, "name": user.full_name,
                         "authority": authority_part(user.organisation.authority)},
        "child": child_part(child),
        "episodes": [_episode_held(session, e) for e in episodes],
        "index_entries": [index_entry_part(e) | {"episode_id": e.episode_id} for e in session.scalars(
            select(IndexEntry).where(or_(IndexEntry.child_id == child.id, IndexEntry.episode_id.in_(episode_ids)))
            .order_by(IndexEntry.id))],
        "search_requests": _search_request_matches(session, child),
        "family": families.family_held(session, child.id),
        "audit": _audit_rows(session, child, episode_ids),
    }
    for episode_id in episode_ids or [None]:
        audit.record(session, "subject_access_export", actor_id=user.id, episode_id=episode_id, child_id=child.id)
    return document


def _episode_held(session: Session, episode: Episode) -> dict:
    if episode.status == "deleted":
        # Deletion removed the content for good; only the stub remains.
        return {"id": episode.id, "reference": episode.reference, "status": episode.status,
                "deleted_at": iso(episode.deleted_at), "authority": authority_part(episode.authority)}
    return {**episode_part(episode), "authority": authority_part(episode.authority),
            "process": process_part(episode.process_version), "members": members_part(session, episode),
            "consents": consents_part(session, episode), "artefacts": artefacts_part(session, episode),
            "tasks": tasks_part(session, episode)}


def _search_request_matches(session: Session, child: Child) -> list[dict]:
    rows = session.scalars(select(SearchRequestChild).where(SearchRequestChild.matched_child_id == child.id)
                           .order_by(SearchRequestChild.id))
    return [{"request": r.request.reference, "requested_by": email_of(r.request.requester),
             "requested_at": iso(r.request.created_at), "reason": r.request.reason, "status": r.request.status,
             "answer": r.request.answer, "answered_at": iso(r.request.answered_at),
             "as_asked": {"given_names": r.given_names, "family_name": r.family_name,
                          "date_of_birth": iso(r.date_of_birth), "postcode": r.postcode, "nhs_number": r.nhs_number,
                          "notes": r.notes}}
            for r in rows]


def _audit_rows(session: Session, child: Child, episode_ids: list[int]) -> list[dict]:
    about_child = AuditEvent.detail["child_id"].as_integer() == child.id
    about_episodes = AuditEvent.episode_id.in_(episode_ids) if episode_ids else None
    where = or_(about_child, about_episodes) if about_episodes is not None else about_child
    rows = session.execute(select(AuditEvent, User.email).outerjoin(User, User.id == AuditEvent.actor_id)
                           .where(where).order_by(AuditEvent.at, AuditEvent.id)).all()
    return [{"at": iso(event.at), "action": event.action, "actor": email, "episode_id": event.episode_id,
             "detail": event.detail} for event, email in rows]
