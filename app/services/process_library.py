"""The process library: every process with its versions, and the drafts process owners are working on."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.models import OPEN_STATUSES, Episode, ProcessDraft, ProcessVersion, User


@dataclass
class VersionRow:
    version: ProcessVersion
    deployed_by: str | None
    open_episodes: int
    current: bool


@dataclass
class ProcessEntry:
    process_id: str
    name: str
    versions: list[VersionRow]
    drafts: list[ProcessDraft] = field(default_factory=list)

    @property
    def current(self) -> VersionRow:
        return self.versions[0]


def open_episode_counts(session: Session) -> dict[int, int]:
    """Open episodes on each process version, in one grouped count."""
    rows = session.execute(select(Episode.process_version_id, func.count())
                           .where(Episode.status.in_(OPEN_STATUSES))
                           .group_by(Episode.process_version_id))
    return {version_id: count for version_id, count in rows}


def open_episodes_by_version(session: Session, process_id: str) -> dict[int, int]:
    """Open episodes on each version number of one process, in one grouped count."""
    rows = session.execute(select(ProcessVersion.version, func.count(Episode.id))
                           .join(Episode, Episode.process_version_id == ProcessVersion.id)
                           .where(ProcessVersion.process_id == process_id, Episode.status.in_(OPEN_STATUSES))
                           .group_by(ProcessVersion.version))
    return {number: count for number, count in rows}


def library_entries(session: Session, *, with_drafts: bool) -> list[ProcessEntry]:
    """Every process with its versions (newest, the current one, first) and its open drafts."""
    deployer = aliased(User)
    rows = session.execute(select(ProcessVersion, deployer.full_name)
                           .outerjoin(deployer, deployer.id == ProcessVersion.deployed_by_id)
                           .order_by(ProcessVersion.process_id, ProcessVersion.version.desc())).all()
    counts = open_episode_counts(session)
    entries: dict[str, ProcessEntry] = {}
    for version, deployed_by in rows:
        entry = entries.get(version.process_id)
        if entry is None:
            entry = entries[version.process_id] = ProcessEntry(version.process_id, version.name, [])
        entry.versions.append(VersionRow(version, deployed_by, counts.get(version.id, 0), not entry.versions))
    if with_drafts:
        for draft in open_drafts(session):
            entry = entries.get(draft.process_id)
            if entry is None:  # a new process, uploaded but never deployed
                entry = entries[draft.process_id] = ProcessEntry(draft.process_id, draft.title, [])
            entry.drafts.append(draft)
    return list(entries.values())


def open_drafts(session: Session) -> list[ProcessDraft]:
    return list(session.scalars(select(ProcessDraft).where(ProcessDraft.status == "open")
                                .order_by(ProcessDraft.process_id, ProcessDraft.updated_at.desc())))


def waiting_for_review(session: Session) -> list[ProcessDraft]:
    """Drafts submitted for deployment, oldest first, so a second process owner finds them."""
    return list(session.scalars(select(ProcessDraft).where(ProcessDraft.status == "open",
                                                           ProcessDraft.review_status == "submitted")
                                .order_by(ProcessDraft.submitted_at)))


def find_version(session: Session, process_id: str, number: int) -> ProcessVersion | None:
    return session.scalar(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                       ProcessVersion.version == number))


def current_number(session: Session, process_id: str) -> int | None:
    return session.scalar(select(func.max(ProcessVersion.version)).where(ProcessVersion.process_id == process_id))


def deployed_by_name(session: Session, version: ProcessVersion) -> str | None:
    return session.scalar(select(User.full_name).where(User.id == version.deployed_by_id)) \
        if version.deployed_by_id else None

