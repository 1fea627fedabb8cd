"""What a recipient of a share reads: exactly the records a decision names, until it expires.

The recipient is not a member of the episode: every read here goes through the duty-to-share
policy (app/policy/duty_to_share.py), is recorded in the audit trail (so it shows in "who has
opened this CAF"), and a refusal is recorded too. The expiry step of each approved share is
woken here when its date comes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app import attachments, audit, policy
from app.clock import now
from app.models import Artefact, Contribution, Episode, ShareDecision, User
from app.services.share_decisions import NotFound, shareable_records

log = logging.getLogger(__name__)


class ShareEnded(Exception):
    """The recipient's access ended (or was never approved): the page says so."""

    def __init__(self, decision: ShareDecision, why: str):
        self.decision, self.why = decision, why
        super().__init__(why)


@dataclass
class SharedRecord:
    key: str
    title: str


def shared_with(runtime, user: User) -> list[ShareDecision]:
    """Every approved decision that shares something with `user`, live or ended."""
    with runtime.db.session() as session:
        rows = session.scalars(select(ShareDecision).where(policy.shared_with_filter(user),
                                                           ShareDecision.status.in_(("granted", "expired")))
                               .options(joinedload(ShareDecision.episode).joinedload(Episode.authority))
                               .order_by(ShareDecision.expires_at.desc())).unique().all()
        for row in rows:
            row.live = policy.is_live(row)
        return rows


def _refused(session: Session, user: User, row: ShareDecision | None, asked_for: str, why: str) -> None:
    """Record why `user` may not read `asked_for`, commit it, and raise what the page answers."""
    if row is not None:
        audit.record(session, "shared_access_refused", actor_id=user.id, episode_id=row.episode_id,
                     decision=row.id, asked_for=asked_for, why=why)
    session.commit()
    if why == "not_found" or row is None:
        raise NotFound(asked_for)
    session.expunge(row)
    raise ShareEnded(row, why)


def _live(session: Session, user: User, decision_id: int, asked_for: str) -> ShareDecision:
    row = session.scalar(select(ShareDecision).where(ShareDecision.id == decision_id)
                         .options(joinedload(ShareDecision.episode).joinedload(Episode.authority)))
    if (why := policy.shared_access_refusal(user, row)) is not None:
        _refused(session, user, row, asked_for, why)
    return row


def _shared(session: Session, user: User, decision_id: int, key: str) -> ShareDecision:
    """The live share naming record `key` (NotFound, the refusal audited, for any record it does not name)."""
    row = _live(session, user, decision_id, key)
    if not policy.may_read_shared_record(user, row, key):
        audit.record(session, "shared_access_refused", actor_id=user.id, episode_id=row.episode_id,
                     decision=row.id, asked_for=key, why="not_shared")
        session.commit()
        raise NotFound(key)
    return row


def open_share(runtime, decision_id: int, user: User) -> tuple[ShareDecision, list[SharedRecord]]:
    """The share and the records it names, for its recipient while it lasts."""
    with runtime.db.session() as session:
        row = _live(session, user, decision_id, "the shared records")
        titles = dict(shareable_records(session, row.episode))
        records = [SharedRecord(key, titles.get(key, "A record no longer held")) for key in row.records]
        audit.record(session, "shared_records_viewed", actor_id=user.id, episode_id=row.episode_id, decision=row.id)
        row.episode.child  # noqa: B018 - the page names the child
        return row, records


def read_record(runtime, decision_id: int, key: str, user: User, summarise):
    """One shared record (an artefact's latest version or a contribution) as (share, title, rows)."""
    with runtime.db.session() as session:
        row = _shared(session, user, decision_id, key)
        kind, _, ident = key.partition(":")
        title, rows = _content(session, row, kind, ident, summarise)
        if title is None:
            raise NotFound(key)
        audit.record(session, "shared_record_viewed", actor_id=user.id, episode_id=row.episode_id,
                     decision=row.id, record=key)
        return row, title, rows


def _content(session: Session, share: ShareDecision, kind: str, ident: str, summarise):
    from app.services import episode_record  # the episode page's own way of showing a record

    if kind == "artefact":
        # The version that stood when the decision was asked for: what was approved, not a later one.
        artefact = session.scalar(select(Artefact).where(Artefact.episode_id == share.episode_id,
                                                         Artefact.kind == ident, Artefact.created_at <= share.asked_at)
                                  .order_by(Artefact.version.desc()).limit(1))
        if artefact is None:
            return None, []
        view = episode_record.artefact_view(session, share.episode, artefact, summarise)
        return f"{view.title} (version {view.version})", view.rows
    if kind == "contribution" and ident.isdigit():
        contribution = session.get(Contribution, int(ident))
        if contribution is None or contribution.episode_id != share.episode_id:
            return None, []
        rows = [{"kind": "text", "key": name.replace("_", " ").capitalize(), "lines": _lines(value)}
                for name, value in sorted((contribution.content or {}).items())]
        return f"Contribution from {contribution.contributor.full_name}", rows
    return None, []


def _lines(value) -> list[str]:
    if isinstance(value, dict):
        return [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in value.items() if v not in (None, "")]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def download(runtime, decision_id: int, attachment_id: int, user: User):
    """A shared attachment, opened for download (and recorded as downloaded)."""
    key = f"attachment:{attachment_id}"
    with runtime.db.session() as session:
        row = _shared(session, user, decision_id, key)
        found = attachments.open_for_download(session, runtime.config, episode=row.episode,
                                              attachment_id=attachment_id, user=user)
        if found is None:
            raise NotFound(key)
        audit.record(session, "shared_record_viewed", actor_id=user.id, episode_id=row.episode_id,
                     decision=row.id, record=key)
        return found


def expire_due(runtime) -> int:
    """Wake every approved share whose expiry has come: its process ends the access and records it."""
    woken = 0
    with runtime.db.session() as session:
        query = select(ShareDecision).where(ShareDecision.next_timer_at <= now()) \
            .order_by(ShareDecision.next_timer_at).limit(200)
        if runtime.db.is_postgresql:
            query = query.with_for_update(skip_locked=True)
        due = session.scalars(query).all()
        processes = runtime.engine.own_processes
        for row in due:
            try:
                with session.begin_nested():
                    processes.wake(session, row, row.episode)
            except Exception:  # noqa: BLE001 - one failing share must not hold back the others' ends
                log.exception("the expiry of decision to share %s failed; it is tried again at the next sweep",
                              row.id)
                continue
            woken += 1
    return woken
