"""Process owners move open episodes to a newer version of their process.

First a dry run over every open episode of the older version: which can move, why each other
one cannot, and what moving does (timers that keep their due time or restart, drafts that would
be lost). Then one action over the episodes the owner chose: each moves in its own transaction
with its row locked, so one failure leaves that episode exactly as it was and the others still
move. Every selected episode gets a recorded result and an audit row; the action gets one more.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app import audit
from app.clock import now
from app.engine import migration
from app.engine.diff import VersionDiff, VersionRef, version_diff
from app.engine.errors import EngineError
from app.models import OPEN_STATUSES, Episode, HumanTask, ProcessMigration, ProcessVersion, User
from app.policy import process_library as library_policy
from app.uk_time import date_time

log = logging.getLogger(__name__)

STAGES = ("preparation", "assessment", "delivery", "closure")
BATCH_SIZE = 200  # episodes loaded per query in a dry run
MAX_NOTE = 2000


class MigrationRefused(EngineError):
    """The migration as asked cannot run; `problems` says why, nothing was changed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class EpisodeReport:
    episode_id: int
    reference: str
    stage: str
    status: str
    check: migration.MigrationCheck
    drafts_lost: list[str] = field(default_factory=list)
    drafts_on_changed_forms: list[str] = field(default_factory=list)

    @property
    def migratable(self) -> bool:
        return self.check.migratable

    def effects(self) -> list[str]:
        """What moving does to this episode, in words (also kept with its recorded result)."""
        lines = [f"the draft of '{title}' will be lost" for title in self.drafts_lost]
        lines += [f"the draft of '{title}' is kept, but its form changed" for title in self.drafts_on_changed_forms]
        for timer in self.check.timers:
            lines.append(_timer_effect(timer))
        lines += [f"'{title}' becomes ready" for title in self.check.new_tasks.values()]
        return lines + self.check.notes


def _timer_effect(timer: migration.TimerChange) -> str:
    due = lambda value: date_time(value) if value else "no due time"  # noqa: E731
    return {"kept": f"'{timer.name}' keeps its due time ({due(timer.before)})",
            "restarts": f"'{timer.name}' restarts: now due {due(timer.after)} (was {due(timer.before)})",
            "recomputed": f"'{timer.name}' changes: now due {due(timer.after)} (was {due(timer.before)})",
            "new": f"'{timer.name}' starts: due {due(timer.after)}",
            "ends": f"'{timer.name}' no longer waits (was due {due(timer.before)})"}[timer.outcome]


@dataclass
class Plan:
    process_id: str
    source: VersionRef
    target: VersionRef
    diff: VersionDiff
    stage: str | None = None
    episodes: list[EpisodeReport] = field(default_factory=list)

    @property
    def migratable(self) -> list[EpisodeReport]:
        return [e for e in self.episodes if e.migratable]

    @property
    def refused(self) -> list[EpisodeReport]:
        return [e for e in self.episodes if not e.migratable]


@dataclass
class RunResult:
    batch: str
    migrated: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- choosing the versions

def parse_version(text: str, default_process: str) -> tuple[str, int]:
    """"caf_episode:3", "3" or "v3" -> (process id, number)."""
    process_id, _, number = text.strip().rpartition(":")
    number = number.strip().lower().removeprefix("v")
    if not number.isdigit():
        raise MigrationRefused([f"'{text}' is not a version: write a number, like 3, or caf_episode:3"])
    return (process_id.strip() or default_process), int(number)


def versions(session: Session, process_id: str, from_number: int | None,
             to_number: int | None) -> tuple[ProcessVersion, ProcessVersion]:
    """The source and target versions; the target must be a newer version of the same process."""
    problems = []
    if from_number is None or to_number is None:
        raise MigrationRefused(["Choose the version to move episodes from and the version to move them to"])
    found = {v.version: v for v in session.scalars(select(ProcessVersion).where(
        ProcessVersion.process_id == process_id, ProcessVersion.version.in_([from_number, to_number])))}
    for number in (from_number, to_number):
        if number not in found:
            problems.append(f"{process_id} has no version {number}")
    if not problems and to_number <= from_number:
        problems.append(f"The target version must be newer than the source: v{to_number} is not newer than "
                        f"v{from_number}")
    if problems:
        raise MigrationRefused(problems)
    return found[from_number], found[to_number]


def diff_between(session: Session, process_id: str, from_number: int, to_number: int) -> VersionDiff:
    """The diff of any two versions of a process (older first is not required for reading)."""
    found = {v.version: v for v in session.scalars(select(ProcessVersion).where(
        ProcessVersion.process_id == process_id, ProcessVersion.version.in_([from_number, to_number])))}
    missing = [n for n in (from_number, to_number) if n not in found]
    if missing:
        raise MigrationRefused([f"{process_id} has no version {n}" for n in missing])
    return version_diff(found[from_number], found[to_number])


# ---------------------------------------------------------------- the dry run

def dry_run(runtime, process_id: str, from_number: int | None, to_number: int | None, *,
            episode_ids: list[int] | None = None, stage: str | None = None) -> Plan:
    """What migrating each open episode of the source version would do. Changes nothing."""
    with runtime.db.session() as session:
        source, target = versions(session, process_id, from_number, to_number)
        diff = version_diff(source, target)
        plan = Plan(process_id, diff.old, diff.new, diff, stage if stage in STAGES else None)
        for chunk in _open_episodes(session, source.id, episode_ids, plan.stage):
            drafts = _drafts(session, [e.id for e in chunk])
            for episode in chunk:
                plan.episodes.append(_report(episode, diff, drafts.get(episode.id, []))[0])
            session.expunge_all()  # a dry run over thousands of episodes keeps one chunk in memory
        session.rollback()
    return plan


def _open_episodes(session: Session, version_id: int, episode_ids: list[int] | None, stage: str | None):
    query = select(Episode).where(Episode.process_version_id == version_id, Episode.status.in_(OPEN_STATUSES)) \
        .options(joinedload(Episode.authority)).order_by(Episode.id)  # the version is loaded once, not per row
    if episode_ids is not None:
        query = query.where(Episode.id.in_(episode_ids))
    if stage:
        query = query.where(Episode.stage == stage)
    last_id = 0
    while True:
        chunk = session.scalars(query.where(Episode.id > last_id).limit(BATCH_SIZE)).unique().all()
        if not chunk:
            return
        yield chunk
        last_id = chunk[-1].id


def _drafts(session: Session, episode_ids: list[int]) -> dict[int, list[HumanTask]]:
    found: dict[int, list[HumanTask]] = {}
    for row in session.scalars(select(HumanTask).where(HumanTask.episode_id.in_(episode_ids),
                                                       HumanTask.status == "ready", HumanTask.draft.is_not(None))):
        if row.draft:
            found.setdefault(row.episode_id, []).append(row)
    return found


def _report(episode: Episode, diff: VersionDiff, drafts: list[HumanTask]):
    """What moving the episode does; when it can move, its workflow is moved (in memory) too."""
    check, workflow = _check(episode, diff)
    report = EpisodeReport(episode.id, episode.reference, episode.stage, episode.status, check)
    if check.migratable:
        report.drafts_lost = [row.title for row in drafts if row.task_id in check.ended_tasks]
        report.drafts_on_changed_forms = [row.title for row in drafts if row.task_id not in check.ended_tasks
                                          and row.name in diff.changed_forms]
    return report, workflow


def _check(episode: Episode, diff: VersionDiff):
    """(the check, the moved workflow or None)."""
    if episode.status not in OPEN_STATUSES:
        return migration.MigrationCheck(reasons=[f"the episode is {episode.status}"]), None
    if episode.process_version_id != diff.old.id:
        return migration.MigrationCheck(reasons=[f"it is not on {diff.old.label}"]), None
    if not episode.state:
        return migration.MigrationCheck(reasons=["the episode has no workflow state"]), None
    try:
        workflow = migration.load(episode, diff)
        check = migration.migrate(workflow, diff)
    except Exception as exc:  # noqa: BLE001 - the model, not the episode, decides; say what happened
        log.warning("migration check of episode %s failed: %s", episode.id, exc)
        return migration.MigrationCheck(reasons=[f"moving it fails: {exc}"]), None
    return check, workflow if check.migratable else None


# ---------------------------------------------------------------- the migration

def run(runtime, process_id: str, from_number: int | None, to_number: int | None, *,
        episode_ids: list[int] | None, note: str | None, by_user_id: int, stage: str | None = None) -> RunResult:
    """Move the chosen open episodes of the source version (all of them when `episode_ids` is None)."""
    note = (note or "").strip()
    with runtime.db.session() as session:
        problems = []
        user = session.get(User, by_user_id)
        if not library_policy.may_change_library(user):
            problems.append("Only process owners migrate episodes")
        if not note:
            problems.append("Enter a change note: it is kept with each episode's result and in the audit trail")
        elif len(note) > MAX_NOTE:
            problems.append(f"The change note must be {MAX_NOTE} characters or fewer")
        if episode_ids is not None and not episode_ids:
            problems.append("Choose at least one episode to migrate")
        if problems:
            raise MigrationRefused(problems)
        source, target = versions(session, process_id, from_number, to_number)
        diff = version_diff(source, target)
        query = select(Episode.id).where(Episode.process_version_id == source.id,
                                         Episode.status.in_(OPEN_STATUSES)).order_by(Episode.id)
        if stage in STAGES:
            query = query.where(Episode.stage == stage)
        selected = list(episode_ids) if episode_ids is not None else list(session.scalars(query))
    result = RunResult(str(uuid.uuid4()))
    for episode_id in dict.fromkeys(selected):
        outcome, next_timer = _migrate_one(runtime, episode_id, diff, result.batch, note, by_user_id)
        getattr(result, outcome).append(episode_id)
        if outcome == "migrated":
            _schedule(runtime, episode_id, next_timer)
    with runtime.db.session() as session:
        audit.record(session, "process_migration_run", actor_id=by_user_id, process=process_id,
                     source=diff.old.label, target=diff.new.label, batch=result.batch, note=note,
                     migrated=len(result.migrated), refused=len(result.refused), failed=len(result.failed))
    return result


def _migrate_one(runtime, episode_id: int, diff: VersionDiff, batch: str, note: str, by_id: int):
    """One episode, one transaction: moved, refused (with reasons) or failed (left as it was)."""
    try:
        with runtime.db.session() as session:
            episode = _lock(runtime, session, episode_id)
            if episode is None:
                audit.record(session, "episode_migration_refused", actor_id=by_id, batch=batch,
                             reasons=[f"there is no episode {episode_id}"])
                return "refused", None
            report, workflow = _report(episode, diff, _drafts(session, [episode.id]).get(episode.id, []))
            if not report.migratable:
                _record(session, episode, diff, batch, "refused", report.check.reasons, None, note, by_id)
                return "refused", None
            migration.save(session, episode, workflow, diff)
            _record(session, episode, diff, batch, "migrated", None, report.effects(), note, by_id)
            return "migrated", episode.next_timer_at
    except Exception as exc:  # noqa: BLE001 - recorded and audited; the episode's transaction rolled back
        log.exception("migrating episode %s to %s failed", episode_id, diff.new.label)
        with runtime.db.session() as session:
            episode = session.get(Episode, episode_id)
            _record(session, episode, diff, batch, "failed", [f"{type(exc).__name__}: {exc}"], None, note, by_id)
        return "failed", None


def _lock(runtime, session: Session, episode_id: int) -> Episode | None:
    """The episode row, locked against every step for the rest of the transaction, as the engine does."""
    query = select(Episode).where(Episode.id == episode_id)
    if runtime.db.is_postgresql:
        query = query.with_for_update()
    return session.scalar(query)


def _record(session: Session, episode: Episode | None, diff: VersionDiff, batch: str, status: str,
            reasons: list[str] | None, effects: list[str] | None, note: str, by_id: int) -> None:
    if episode is not None:
        session.add(ProcessMigration(batch=batch, episode_id=episode.id, from_version_id=diff.old.id,
                                     to_version_id=diff.new.id, status=status, reasons=reasons, reset=effects,
                                     change_note=note, by_id=by_id, at=now()))
    action = {"migrated": "episode_migrated", "refused": "episode_migration_refused",
              "failed": "episode_migration_failed"}[status]
    audit.record(session, action, actor_id=by_id, episode_id=episode.id if episode else None,
                 source=diff.old.label, target=diff.new.label, batch=batch, note=note,
                 **({"reasons": reasons} if reasons else {}))


def _schedule(runtime, episode_id: int, next_timer) -> None:
    dispatcher = runtime.engine.dispatcher
    if dispatcher is None:
        return
    try:
        dispatcher.episode_stepped(episode_id, next_timer)
    except Exception:  # the sweep wakes any episode whose next timer has passed
        log.exception("could not schedule the wake-up of migrated episode %s", episode_id)


# ---------------------------------------------------------------- results

@dataclass
class BatchRow:
    episode_id: int
    reference: str
    status: str
    reasons: list[str]
    effects: list[str]


@dataclass
class Batch:
    batch: str
    process_id: str
    source: str
    target: str
    note: str | None
    by: str | None
    at: object
    rows: list[BatchRow]

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)


def batch_results(session: Session, batch: str) -> Batch | None:
    rows = session.scalars(select(ProcessMigration).where(ProcessMigration.batch == batch)
                           .order_by(ProcessMigration.episode_id)).all()
    if not rows:
        return None
    first = rows[0]
    source = session.get(ProcessVersion, first.from_version_id)
    target = session.get(ProcessVersion, first.to_version_id)
    by = session.get(User, first.by_id) if first.by_id else None
    references = {e.id: e.reference for e in session.scalars(
        select(Episode).where(Episode.id.in_([r.episode_id for r in rows])).options(joinedload(Episode.authority)))}
    return Batch(batch, source.process_id, source.label, target.label, first.change_note,
                 by.full_name if by else None, first.at,
                 [BatchRow(r.episode_id, references.get(r.episode_id, str(r.episode_id)), r.status,
                           r.reasons or [], r.reset or []) for r in rows])
