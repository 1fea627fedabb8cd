"""The national index: "a CAF exists for this child; contact this practitioner" (N11).

eCAF keeps its own index table, searchable without access to the CAF, and sends the same
notice to an external endpoint when one is configured. The index never holds the CAF itself.
"""
from __future__ import annotations

from sqlalchemy import select

from app.engine.context import StepContext
from app.models import IndexEntry

from . import operator


@operator("index/notify")
def notify(ctx: StepContext, reason: str) -> dict:
    episode, child = ctx.episode, ctx.episode.child
    if child is None:
        raise ValueError(f"episode {episode.reference} has no child record to index")
    contact = ctx.lead_professional().contact()
    entry = ctx.session.scalar(select(IndexEntry).where(IndexEntry.episode_id == episode.id))
    if entry is None:
        entry = IndexEntry(episode_id=episode.id)
        ctx.session.add(entry)
    entry.child_id, entry.family_name = child.id, child.family_name
    entry.date_of_birth, entry.postcode = child.date_of_birth, child.postcode
    entry.authority_id, entry.contact, entry.status, entry.updated_at = episode.authority_id, contact, "open", ctx.now
    ctx.session.flush()
    if ctx.config.index_endpoint_url:
        notice = {"event": reason, "episode_reference": episode.reference,
                  "child": {"family_name": child.family_name, "given_names": child.given_names,
                            "date_of_birth": child.date_of_birth.isoformat() if child.date_of_birth else None,
                            "postcode": child.postcode},
                  "home_authority": episode.authority.name, "contact": contact}
        ctx.notify("index_notice", ctx.config.index_endpoint_url, f"CAF exists: {episode.reference}",
                   "A CAF exists for this child; contact the practitioner named.", channel="index", payload=notice)
    ctx.audit("index_notified", reason=reason)
    return {"entry_id": entry.id}
