"""What the fault test reads afterwards: from the database, every deadline that came due and when
it fired (the audit rows the deadline steps write), every outbox message; from the recording
servers, what was received. Then the lateness of each deadline and the checks of the issue."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from app.jobs.channels.smtp import message_id_for
from app.models import AuditEvent, Episode, OutboxMessage

from .short_deadlines import Deadlines


@dataclass(frozen=True)
class Fault:
    name: str
    started: datetime
    ended: datetime


@dataclass
class Deadline:
    episode_id: int
    kind: str  # assessment (35-day limit), child_protection (48-hour limit), notice (24 hours' notice)
    due: datetime | None  # None: the step that sets it never ran
    fired: list[datetime] = field(default_factory=list)

    def __str__(self) -> str:
        due = self.due.strftime("%H:%M:%S.%f")[:-3] if self.due else "never set"
        fired = ", ".join(f.strftime("%H:%M:%S.%f")[:-3] for f in self.fired) or "never"
        return f"episode {self.episode_id} {self.kind} deadline (due {due}, fired {fired})"


def deadlines_of(session, concerns: dict[int, bool], limits: Deadlines) -> list[Deadline]:
    """Every deadline the given episodes (id: child-protection concern?) should have come to, with when
    it was due and each time it fired, read from the audit trail:
    - the 35-day limit: due `limits.assessment` after the start; firing audits deadline_missed (assessment);
    - the 48-hour limit, with a concern: due `limits.child_protection` after the concern was recorded
      (child_protection_concern_recorded); firing audits deadline_missed (child_protection);
    - the 24 hours' notice: due `limits.notice` after the 35-day limit fired; firing deletes the episode
      (episode_deleted)."""
    rows = session.scalars(select(AuditEvent).where(AuditEvent.episode_id.in_(list(concerns)))
                           .order_by(AuditEvent.id)).all()

    def times(episode_id: int, action: str, deadline: str | None = None) -> list[datetime]:
        return [row.at for row in rows if row.episode_id == episode_id and row.action == action
                and (deadline is None or (row.detail or {}).get("deadline") == deadline)]

    found = []
    for episode_id, concern in concerns.items():
        started = session.get(Episode, episode_id).started_at
        assessment = Deadline(episode_id, "assessment", started + timedelta(seconds=limits.assessment),
                              times(episode_id, "deadline_missed", "assessment"))
        found.append(assessment)
        if concern:
            recorded = times(episode_id, "child_protection_concern_recorded")
            found.append(Deadline(episode_id, "child_protection",
                                  recorded[0] + timedelta(seconds=limits.child_protection) if recorded else None,
                                  times(episode_id, "deadline_missed", "child_protection")))
        warned = assessment.fired[0] if assessment.fired else None
        found.append(Deadline(episode_id, "notice", warned + timedelta(seconds=limits.notice) if warned else None,
                              times(episode_id, "episode_deleted")))
    return found


@dataclass(frozen=True)
class Bound:
    """The issue's bound on a deadline's lateness: within the sweep interval of its due time or of the end
    of the fault covering it, plus an allowance the test justifies."""
    sweep_interval: float
    allowance: float
    early_tolerance: float  # due times read from audit rows are a few milliseconds off the workflow's own

    @property
    def limit(self) -> timedelta:
        return timedelta(seconds=self.sweep_interval + self.allowance)

    @property
    def in_flight(self) -> timedelta:
        """A fault covers a deadline due up to one sweep interval before it began: the wake-up that would
        have fired it may have been under way, or still to come, when the fault struck."""
        return timedelta(seconds=self.sweep_interval)

    def reference(self, due: datetime, faults: list[Fault]) -> datetime:
        """When a deadline could first be expected to fire: its due time, or the end of a fault covering it."""
        ends = [f.ended for f in faults if f.started - self.in_flight <= due <= f.ended]
        return max([due, *ends])

    def beyond(self, deadline: Deadline, faults: list[Fault]) -> float:
        """Seconds it fired after its reference time (0 when before)."""
        return max(0.0, (deadline.fired[0] - self.reference(deadline.due, faults)).total_seconds())

    def due_around(self, deadlines: list[Deadline], fault: Fault) -> list[Deadline]:
        return [d for d in deadlines if d.due and fault.started - self.in_flight <= d.due
                <= fault.ended + self.in_flight]


def deadline_problems(deadlines: list[Deadline], faults: list[Fault], bound: Bound) -> list[str]:
    """Every deadline due, fired once, not early, within the bound; and each fault met some deadline."""
    problems = []
    for deadline in deadlines:
        if deadline.due is None:
            problems.append(f"{deadline}: the step that sets it never ran")
        elif len(deadline.fired) != 1:
            problems.append(f"{deadline}: fired {len(deadline.fired)} times, not once")
        elif deadline.fired[0] < deadline.due - timedelta(seconds=bound.early_tolerance):
            problems.append(f"{deadline}: fired before it was due")
        elif deadline.fired[0] - bound.reference(deadline.due, faults) > bound.limit:
            after = "its due time" if bound.reference(deadline.due, faults) == deadline.due else \
                "the end of the fault covering it"
            problems.append(f"{deadline}: {bound.beyond(deadline, faults):.1f} s after {after}, more than the sweep "
                            f"interval ({bound.sweep_interval:g} s) + {bound.allowance:g} s")
    problems += [f"no deadline fell due around the fault '{fault.name}': the test did not test it"
                 for fault in faults if not bound.due_around(deadlines, fault)]
    return problems


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Deliveries:
    messages: list[OutboxMessage]
    problems: list[str]
    by_channel: Counter


def check_deliveries(session, mail_received, index_received) -> Deliveries:
    """Every outbox message sent, and received exactly once by the server it was for: an email by its
    Message-ID (a digest of the idempotency key), an index notice by its Idempotency-Key. Nothing
    received that the outbox does not hold."""
    messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    mail = [r.key.strip().strip("<>") for r in mail_received]
    notices = Counter(r.key for r in index_received)
    problems, matched_mail = [], set()
    for m in messages:
        if m.status != "sent":
            problems.append(f"message {m.id} ({m.kind}, {m.channel}) is {m.status} after {m.attempts} attempts: "
                            f"{m.last_error}")
        if m.channel == "index":
            times = notices[m.idempotency_key]
        else:
            found = [i for i, received in enumerate(mail) if _carries(received, m.idempotency_key)]
            matched_mail.update(found)
            times = len(found)
        if times != 1:
            problems.append(f"message {m.id} ({m.kind}, {m.channel}, key {m.idempotency_key}) was received "
                            f"{times} times")
    problems += [f"an email nobody wrote was received: {mail[i]}" for i in sorted(set(range(len(mail))) - matched_mail)]
    written = {m.idempotency_key for m in messages if m.channel == "index"}
    problems += [f"an index notice nobody wrote was received: {key}" for key in set(notices) - written]
    return Deliveries(messages, problems, Counter(m.channel for m in messages))


def _carries(message_id: str, key: str) -> bool:
    """Whether a received Message-ID (without its angle brackets) is the one eCAF made from this
    idempotency key (app/jobs/channels/smtp.message_id_for)."""
    return f"<{message_id}>" == message_id_for(key)


def expected_message_kinds(concern: bool, distinct_deletion_recipients: int) -> Counter:
    """The emails one episode whose deadlines all fired should have written, by kind."""
    kinds = Counter({"overdue_alert": 1, "deletion_warning": 1, "episode_deleted": distinct_deletion_recipients})
    if concern:
        kinds.update({"escalation_admin": 1, "escalation_lead": 1})
    return kinds


def episode_problems(session, concerns: dict[int, bool], submitted: list[int], admin_email: str) -> list[str]:
    """No episode in error; each whose deadlines ran out deleted, having written each of its messages once;
    each submitted one in delivery, the national index told once."""
    episodes = {e.id: e for e in session.scalars(select(Episode).where(Episode.id.in_([*concerns, *submitted])))}
    kinds = Counter((m.episode_id, m.kind) for m in session.scalars(
        select(OutboxMessage).where(OutboxMessage.episode_id.in_(list(episodes)))))
    problems = [f"episode {e.id} is in status error: {e.error_task}: {e.last_error}"
                for e in episodes.values() if e.status == "error"]
    for episode_id, concern in concerns.items():
        episode = episodes[episode_id]
        if episode.status != "deleted":
            problems.append(f"episode {episode_id} is {episode.status} in {episode.stage}, not deleted after its "
                            "notice ran out")
        expected = expected_message_kinds(concern, len({episode.originator.email, admin_email}))
        written = Counter({kind: n for (eid, kind), n in kinds.items() if eid == episode_id})
        if written != expected:
            problems.append(f"episode {episode_id} wrote messages {dict(written)}, not {dict(expected)}")
    for episode_id in submitted:
        if kinds[(episode_id, "index_notice")] != 1 or episodes[episode_id].stage != "delivery":
            problems.append(f"submitted episode {episode_id} is in {episodes[episode_id].stage} with "
                            f"{kinds[(episode_id, 'index_notice')]} index notices, not in delivery with one")
    return problems
