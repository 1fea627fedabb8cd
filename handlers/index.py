"""The national index: "a CAF exists for this child; contact this practitioner" (N11).

eCAF keeps its own index table, searchable without access to the CAF, and sends the same
notice to an external endpoint when one is configured. The index never holds the CAF itself.
The entry follows the episode: a new lead professional changes its contact, closure or a
withdrawal of consent closes it, and each change is sent on as a notice.
"""
from __future__ import annotations

from sqlalchemy import select

from app.engine.context import StepContext
from app.models import IndexEntry

from . import operator


def _entry(ctx: StepContext) -> IndexEntry | None:
    return ctx.session.scalar(select(IndexEntry).where(IndexEntry.episode_id == ctx.episode.id))


def _send_notice(ctx: StepContext, entry: IndexEntry, event: str) -> None:
    """The same notice to the external index; never for a shielded child (their whereabouts stay hidden)."""
    episode, child = ctx.episode, ctx.episode.child
    if not ctx.config.index_endpoint_url or child is None:
        return
    if child.shielded:
        ctx.audit("index_notice_withheld", event=event, why="shielded child")
        return
    notice = {"event": event, "status": entry.status, "episode_reference": episode.reference,
              "child": {"family_name": child.family_name, "given_names": child.given_names,
                        "date_of_birth": child.date_of_birth.isoformat() if child.date_of_birth else None,
                        "postcode": child.postcode, "nhs_number": child.nhs_number},
              "home_authority": episode.authority.name, "contact": entry.contact}
    ctx.notify("index_notice", ctx.config.index_endpoint_url, f"CAF {entry.status}: {episode.reference}",
               "A CAF exists for this child; contact the practitioner named.", channel="index", payload=notice)


@operator("index/notify")
def notify(ctx: StepContext, reason: str) -> dict:
    episode, child = ctx.episode, ctx.episode.child
    if child is None:
        raise ValueError(f"episode {episode.reference} has no child record to index")
    contact = ctx.lead_professional().contact()
    entry = _entry(ctx)
    if entry is None:
        entry = IndexEntry(episode_id=episode.id)
        ctx.session.add(entry)
    entry.child_id, entry.family_name = child.id, child.family_name
    entry.date_of_birth, entry.postcode = child.date_of_birth, child.postcode
    entry.nhs_number = child.nhs_number
    entry.authority_id, entry.contact = episode.authority_id, contact
    entry.status, entry.updated_at = "open", ctx.now
    ctx.session.flush()
    _send_notice(ctx, entry, reason)
    ctx.audit("index_notified", reason=reason)
    return {"entry_id": entry.id}


def follow_episode(ctx: StepContext, event: str, *, closed: bool = False) -> None:
    """Keep an existing entry true to the episode (contact, status) and send the change on."""
    entry = _entry(ctx)
    if entry is None:
        return
    entry.contact = ctx.lead_professional().contact()
    entry.authority_id = ctx.episode.authority_id
    if closed:
        entry.status = "closed"
    entry.updated_at = ctx.now
    _send_notice(ctx, entry, event)
    ctx.audit("index_notified", reason=event)
