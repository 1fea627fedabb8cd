"""eCAF's machinery as an administrator needs to see it, and as /metrics counts it: messages not
going out, background workers, deadlines that have not fired.

Figures only: channels, counts, ages, worker names (host and process number) and the reason the
last delivery failed in eCAF's own words (app/services/delivery_reasons.py). Never a child's name or an episode's
content. Each figure is read by its own function, so /metrics can report a failing database or
Redis as a scrape error while still giving the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session

from app import policy
from app.clock import as_utc, now
from app.jobs import heartbeat
from app.models import Episode, OutboxMessage, User
from app.services import admin_episodes
from app.services.delivery_reasons import plain_reason

CHANNEL_NAMES = {"email": "Email", "index": "National index notices"}
# A message waiting longer than this, with nothing failing, means nobody is delivering.
WAITING_TOO_LONG = timedelta(minutes=5)
FAILED_WITHIN = timedelta(days=1)
# Late deadlines are of episodes still running (or closed, with a six-month outcome check waiting): an
# errored episode's timer waits for its repair.
TIMER_STATUSES = ("open", "error", "closed")
# The newest heartbeat eCAF has seen, kept after the heartbeat itself expires, to say how long ago.
LAST_BEAT_KEY = "ecaf:system:last-worker-beat"
# Reads for figures must never hang a page or a scrape behind a stuck database or Redis.
STATEMENT_TIMEOUT_MS = 5000
REDIS_TIMEOUT_SECONDS = 2.0


# ---------------------------------------------------------------- words

def duration_words(seconds: float) -> str:
    """14 minutes, 1 hour, 3 days: the largest whole unit, as a person would say it."""
    seconds = max(0, int(seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size or size == 1:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "0 seconds"


def _count_words(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"




# ---------------------------------------------------------------- messages

@dataclass
class ChannelState:
    channel: str
    pending: int = 0
    oldest_pending_seconds: float | None = None
    failed: int = 0  # given up, not sent again or discarded
    failed_last_day: int = 0
    retrying: bool = False  # some waiting message has failed at least once
    retry_error: str | None = None  # why the newest waiting message's last try failed, in plain words
    failed_error: str | None = None  # why the newest message given up in the last day failed

    @property
    def label(self) -> str:
        return CHANNEL_NAMES.get(self.channel, self.channel.replace("_", " ").capitalize())

    @property
    def state(self) -> str:
        """failing (messages are being retried), waiting (nothing failed, but nothing is going out),
        gave_up (working now, but messages were given up in the last day) or working."""
        if self.retrying:
            return "failing"
        if self.oldest_pending_seconds is not None and self.oldest_pending_seconds > WAITING_TOO_LONG.total_seconds():
            return "waiting"
        return "gave_up" if self.failed_last_day else "working"

    def sentences(self) -> list[str]:
        """What an administrator reads beside the channel's name, a sentence for each fact."""
        if not self.pending:
            words = ["No messages waiting."]
        else:
            words = [f"{_count_words(self.pending, 'message', 'messages')} waiting, the oldest for "
                     f"{duration_words(self.oldest_pending_seconds or 0)}."]
        if self.retrying:
            words.append(f"The last attempt failed: {self.retry_error or 'no reason was given'}. eCAF keeps trying.")
        if self.failed_last_day:
            words.append(f"In the last day eCAF gave up on {_count_words(self.failed_last_day, 'message', 'messages')}"
                         + (f": {self.failed_error}" if self.failed_error else "")
                         + ". An episode's messages can be sent again from its operations page.")
        if self.state == "waiting":
            words.append("None has failed, so nothing is trying to send them: check the workers below.")
        return words

    def summary(self) -> str:
        """The same in one line, named: "Email: 12 messages waiting, the oldest for 14 minutes. ..."."""
        first, *rest = self.sentences()
        return " ".join([f"{self.label}: {first[0].lower() if first[1:2].islower() else first[0]}{first[1:]}",
                         *rest])


def limit_statement_time(session: Session) -> None:
    """On PostgreSQL, no figure's query may run longer than STATEMENT_TIMEOUT_MS (this transaction only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}"))


# Messages waiting: `sending` ones are claimed by a deliverer (or their last try's outcome is unknown).
WAITING = ("pending", "sending")


def channels(session: Session, moment: datetime | None = None) -> list[ChannelState]:
    """Every channel with a message waiting or given up, and email always, in name order."""
    moment = moment or now()
    found: dict[str, ChannelState] = {"email": ChannelState("email")}
    pending = session.execute(
        select(OutboxMessage.channel, func.count(), func.min(OutboxMessage.created_at),
               func.count(OutboxMessage.last_error))
        .where(OutboxMessage.status.in_(WAITING)).group_by(OutboxMessage.channel)).all()
    for channel, count, oldest, with_errors in pending:
        state = found.setdefault(channel, ChannelState(channel))
        state.pending, state.retrying = count, bool(with_errors)
        state.oldest_pending_seconds = (moment - as_utc(oldest)).total_seconds() if oldest else None
    since = moment - FAILED_WITHIN
    # A given-up message keeps the time its last try was due: when it failed, near enough.
    failed = session.execute(
        select(OutboxMessage.channel, func.count(),
               func.sum(case((OutboxMessage.next_attempt_at >= since, 1), else_=0)))
        .where(OutboxMessage.status == "failed").group_by(OutboxMessage.channel)).all()
    for channel, count, recent in failed:
        state = found.setdefault(channel, ChannelState(channel))
        state.failed, state.failed_last_day = count, int(recent or 0)
    for state in found.values():
        if state.retrying:
            state.retry_error = _newest_error(session, state.channel, "pending", since)
        if state.failed_last_day:
            state.failed_error = _newest_error(session, state.channel, "failed", since)
    return [found[name] for name in sorted(found)]


def _newest_error(session: Session, channel: str, status: str, since: datetime) -> str | None:
    """Why the message of this channel and status tried last failed (its next try is the latest due).
    A message held back while its channel is failing ("not tried: ...") tells less than one that was tried."""
    held_back = case((OutboxMessage.last_error.like("not tried:%"), 1), else_=0)
    return plain_reason(session.scalar(
        select(OutboxMessage.last_error)
        .where(OutboxMessage.channel == channel,
               OutboxMessage.status.in_(WAITING if status == "pending" else (status,)),
               OutboxMessage.last_error.is_not(None), OutboxMessage.next_attempt_at >= since)
        .order_by(held_back, OutboxMessage.next_attempt_at.desc(), OutboxMessage.id.desc()).limit(1)))


# ---------------------------------------------------------------- deadlines

@dataclass
class LateTimers:
    count: int = 0
    oldest_due: datetime | None = None
    errored: int = 0  # of them, episodes whose last automatic step failed
    allowance_seconds: int = 60

    def summary(self, moment: datetime | None = None) -> str:
        if not self.count:
            return (f"No deadline is late: every one that fell due more than "
                    f"{duration_words(self.allowance_seconds)} ago has been acted on.")
        late = duration_words(((moment or now()) - as_utc(self.oldest_due)).total_seconds()) if self.oldest_due else None
        words = [f"{_count_words(self.count, 'episode has a deadline that', 'episodes have deadlines that')} fell "
                 f"due more than {duration_words(self.allowance_seconds)} ago and "
                 f"{'has' if self.count == 1 else 'have'} not been acted on"
                 + (f"; the oldest fell due {late} ago." if late else ".")]
        if self.errored:
            words.append(f"{_count_words(self.errored, 'of them has', 'of them have')} an error that must be "
                         "repaired first.")
        if self.count > self.errored:
            words.append("The reminders, warnings and deletions they bring have not happened yet.")
        return " ".join(words)


def late_timers(session: Session, sweep_interval_seconds: int, admin: User | None = None,
                moment: datetime | None = None) -> LateTimers:
    """Episodes whose next deadline passed more than one sweep interval ago: the sweep would have fired
    it by now if anything were running. Of the administrator's authority when `admin` is given."""
    moment = moment or now()
    where = [Episode.next_timer_at < moment - timedelta(seconds=sweep_interval_seconds),
             Episode.status.in_(TIMER_STATUSES)]
    if admin is not None:
        where.append(policy.authority_clause(admin, Episode.authority_id))
    count, oldest, errored = session.execute(
        select(func.count(), func.min(Episode.next_timer_at),
               func.sum(case((admin_episodes.errored(), 1), else_=0))).where(*where)).one()
    return LateTimers(count or 0, oldest, int(errored or 0), sweep_interval_seconds)


# ---------------------------------------------------------------- workers

@lru_cache(maxsize=4)
def redis_client(url: str):
    """One client per Redis URL and process, with short timeouts: a stuck Redis answers "unreachable"."""
    from redis import Redis

    return Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS)


@dataclass
class WorkerSeen:
    name: str
    started_at: float
    beat_at: float
    progressed_at: float | None = None  # when its deadline loop last got anywhere

    def reported_words(self, moment: float) -> str:
        return f"last reported {duration_words(moment - self.beat_at)} ago"

    def stuck_words(self, moment: float) -> str:
        since = self.progressed_at or self.started_at
        return (f"reports, but its deadline loop has done nothing for {duration_words(moment - since)}: "
                "restart it")

    @classmethod
    def of(cls, record: dict) -> "WorkerSeen":
        marks = [record.get(key) for key in ("timers_at", "timers_progress_at")]
        progressed = max((float(m) for m in marks if isinstance(m, (int, float))), default=None)
        return cls(str(record.get("name", "?")), float(record.get("started_at", 0)), float(record.get("beat_at", 0)),
                   progressed)


@dataclass
class Workers:
    uses_redis: bool
    live: list[WorkerSeen] = field(default_factory=list)
    stuck: list[WorkerSeen] = field(default_factory=list)  # beating, but their deadline loop gets nowhere
    last_beat_at: float | None = None  # the newest heartbeat ever seen, when no worker is live
    problem: str | None = None  # Redis could not be asked
    queues: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if not self.uses_redis:
            return "in_process"
        if self.problem:
            return "unknown"
        if self.live:
            return "working"
        return "stuck" if self.stuck else "stopped"

    def summary(self, moment: float) -> str:
        if self.state == "in_process":
            return "Background jobs run inside the web app: there are no separate workers to watch."
        if self.state == "unknown":
            return (f"eCAF cannot reach Redis, so it cannot tell whether workers are running ({self.problem}). "
                    "Messages sent through workers wait until Redis answers again.")
        stuck = (f" {_count_words(len(self.stuck), 'worker reports', 'workers report')} but {'is' if len(self.stuck) == 1 else 'are'} "
                 "stuck: restart them." if self.stuck else "")
        if self.state == "stuck":
            return ("No worker is acting on deadlines: " + _count_words(len(self.stuck), "worker reports", "workers report")
                    + " but its deadline loop has done nothing for over a minute. Restart the workers "
                    "(systemctl restart 'ecaf-worker@*').")
        if self.state == "stopped":
            since = (f"No worker has reported for {duration_words(moment - self.last_beat_at)}" if self.last_beat_at
                     else "No worker is reporting")
            return f"{since}: deadlines and messages are not being processed."
        return f"{_count_words(len(self.live), 'worker is', 'workers are')} running.{stuck}"


def workers(redis_url: str | None, moment: float) -> Workers:
    """Which workers beat recently. Raises Redis errors: the caller says what it could not read."""
    if not redis_url:
        return Workers(uses_redis=False)
    redis = redis_client(redis_url)
    # Stale and stuck ones too, until their key expires.
    seen = heartbeat.live_workers(redis, within=float("inf"), stuck_too=True)
    live_since = moment - heartbeat.LIVE_WITHIN_SECONDS
    beating = [r for r in seen if float(r.get("beat_at", 0)) >= live_since]
    live = [WorkerSeen.of(r) for r in beating if not r.get("stuck")]
    stuck = [WorkerSeen.of(r) for r in beating if r.get("stuck")]
    newest = max((float(r.get("beat_at", 0)) for r in seen), default=None)
    if newest is not None:
        redis.set(LAST_BEAT_KEY, repr(newest))
    else:
        kept = redis.get(LAST_BEAT_KEY)
        newest = float(kept) if kept else None
    return Workers(uses_redis=True, live=live, stuck=stuck, last_beat_at=None if live or stuck else newest,
                   queues=queue_depths(redis))


def queue_depths(redis) -> dict[str, int]:
    """Jobs waiting in each rq queue."""
    from rq import Queue

    return {queue.name: queue.count for queue in Queue.all(connection=redis)}


def redis_problem(error: Exception) -> str:
    """A Redis error in words, without the URL (it may hold a password)."""
    name = type(error).__name__
    if "Timeout" in name:
        return "it did not answer in time"
    if "Connection" in name:
        return "the connection was refused or lost"
    if "Authentication" in name or "NoPermission" in name:
        return "it refused eCAF's credentials"
    return f"it answered with an error ({name})"


# ---------------------------------------------------------------- the page

@dataclass
class SystemReport:
    channels: list[ChannelState]
    workers: Workers
    timers: LateTimers
    checked_at: datetime

    @property
    def attention(self) -> list[str]:
        """What needs someone now, in order of harm."""
        found = []
        if self.workers.state in ("stopped", "stuck"):
            found.append("workers")
        if self.workers.state == "unknown":
            found.append("redis")
        if self.timers.count:
            found.append("timers")
        found += [f"channel:{c.channel}" for c in self.channels if c.state != "working"]
        return found

    def attention_words(self) -> list[str]:
        """The same, as an administrator would say it to the service desk."""
        found = []
        if self.workers.state == "stopped":
            found.append("No worker is running: deadlines are not acted on and messages are not sent until one "
                         "starts.")
        if self.workers.state == "stuck":
            found.append("The workers are stuck: deadlines are not acted on until they are restarted.")
        if self.workers.state == "unknown":
            found.append("eCAF cannot reach Redis, so it cannot tell whether workers are running.")
        if self.timers.count:
            found.append(f"{_count_words(self.timers.count, 'deadline is', 'deadlines are')} late.")
        for channel in self.channels:
            if channel.state in ("failing", "waiting"):
                found.append(f"{channel.label}: messages are not going out.")
            elif channel.state == "gave_up":
                found.append(f"{channel.label}: some messages were given up in the last day.")
        return found


def report(session: Session, config, admin: User) -> SystemReport:
    moment = now()
    limit_statement_time(session)
    try:
        seen = workers(config.redis_url, moment.timestamp())
    except Exception as error:  # noqa: BLE001 - any Redis failure is shown, never a 500
        seen = Workers(uses_redis=True, problem=redis_problem(error))
    return SystemReport(channels=channels(session, moment), workers=seen,
                        timers=late_timers(session, config.sweep_interval_seconds, admin, moment),
                        checked_at=moment)
