"""Signed checkpoints of the audit trail's head, kept outside the database.

The keyed chain (`app.audit.verify_chain`) proves no row was changed or inserted without the key,
but not that the newest rows are all still there. A checkpoint does: it records the head (seq,
row hash, when, and where the plain SHA-256 rows end), signed with the audit key, in a place the
database cannot reach: a directory (ECAF_AUDIT_CHECKPOINT_DIR, one file per checkpoint) and/or an
HTTP endpoint (ECAF_AUDIT_CHECKPOINT_URL: POST stores one, GET returns the latest, 404 when none).

`write_checkpoint` checks the rows since the latest checkpoint first and refuses to vouch for a
trail that lost or changed rows; `verify_trail` checks the whole chain and then the checkpoint.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app import audit
from app.clock import as_utc, now
from app.config import AuditKeyMissing, Config
from app.db import Database
from app.files import write_whole
from app.models import AuditEvent

log = logging.getLogger(__name__)

VERSION = 1
_FILE = re.compile(r"^checkpoint-(\d{12})-(\d{8}T\d{12}Z)\.json$")
HTTP_TIMEOUT = 10


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or written, or does not hold what it should."""


def key_id(key: bytes) -> str:
    """Names the key without revealing it, so a checkpoint can say which key signed it."""
    return hmac.new(key, b"ecaf-audit-key-id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    seq: int               # the head when it was taken (0: the trail was empty)
    row_hash: str          # that row's hash
    at: str                # when, ISO 8601 UTC
    unkeyed_until: int     # the last row linked by plain SHA-256: no later row may be
    key_id: str
    signature: str = ""
    version: int = VERSION

    def _signed_bytes(self) -> bytes:
        content = {k: v for k, v in asdict(self).items() if k != "signature"}
        return b"ecaf-audit-checkpoint\x00" + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: bytes) -> "Checkpoint":
        return Checkpoint(**{**asdict(self), "signature": hmac.new(key, self._signed_bytes(),
                                                                    hashlib.sha256).hexdigest()})

    def signature_valid(self, key: bytes) -> bool:
        expected = hmac.new(key, self._signed_bytes(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)

    @property
    def taken_at(self) -> datetime:
        return as_utc(datetime.fromisoformat(self.at))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> "Checkpoint":
        try:
            data = json.loads(text)
            checkpoint = cls(seq=int(data["seq"]), row_hash=str(data["row_hash"]), at=str(data["at"]),
                             unkeyed_until=int(data["unkeyed_until"]), key_id=str(data["key_id"]),
                             signature=str(data["signature"]), version=int(data.get("version", VERSION)))
            checkpoint.taken_at  # noqa: B018 - a readable time or a CheckpointError
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{source} is not a readable audit checkpoint ({type(exc).__name__}: {exc})")
        return checkpoint


# ---------------------------------------------------------------- where checkpoints are kept

class DirectoryStore:
    """One file per checkpoint, named so the newest sorts last; written whole or not at all."""

    def __init__(self, path: Path):
        self.path = path

    def __str__(self) -> str:
        return f"directory {self.path}"

    def write(self, checkpoint: Checkpoint) -> str:
        stamp = checkpoint.taken_at.strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path / f"checkpoint-{checkpoint.seq:012d}-{stamp}.json"
        write_whole(target, checkpoint.to_json().encode("utf-8"), prefix=".checkpoint-")
        return str(target)

    def latest(self) -> Checkpoint | None:
        if not self.path.is_dir():
            return None
        names = sorted(name for name in os.listdir(self.path) if _FILE.match(name))
        if not names:
            return None
        newest = self.path / names[-1]
        checkpoint = Checkpoint.from_json(newest.read_bytes(), str(newest))
        if int(_FILE.match(names[-1]).group(1)) != checkpoint.seq:
            # An older (validly signed) checkpoint renamed to look newest would hide deleted rows.
            raise CheckpointError(f"{newest} holds the checkpoint of seq {checkpoint.seq}, not the seq its name says")
        return checkpoint


class HttpStore:
    """POST a checkpoint as JSON; GET answers the one with the highest seq (404 when there is none).

    The endpoint should accept posts only from eCAF and never answer an older checkpoint than one
    it holds: a signed checkpoint cannot be forged, but an old one replayed would hide deletions.
    """

    def __init__(self, url: str):
        if not url.lower().startswith(("https://", "http://")):
            raise CheckpointError(f"ECAF_AUDIT_CHECKPOINT_URL must be an http(s) URL, not {url!r}")
        self.url = url

    def __str__(self) -> str:
        return f"endpoint {self.url}"

    def write(self, checkpoint: Checkpoint) -> str:
        request = urllib.request.Request(self.url, data=checkpoint.to_json().encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise CheckpointError(f"the checkpoint could not be sent to {self.url}: {exc}")
        return self.url

    def latest(self) -> Checkpoint | None:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                return Checkpoint.from_json(response.read(), self.url)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise CheckpointError(f"the latest checkpoint could not be read from {self.url}: HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            raise CheckpointError(f"the latest checkpoint could not be read from {self.url}: {exc}")


def stores(config: Config) -> list:
    found: list = []
    if config.audit_checkpoint_dir:
        found.append(DirectoryStore(Path(config.audit_checkpoint_dir)))
    if config.audit_checkpoint_url:
        found.append(HttpStore(config.audit_checkpoint_url))
    return found


def latest_checkpoint(config: Config) -> tuple[Checkpoint | None, str | None]:
    """The newest checkpoint in any configured store (highest seq, then latest), and where it was."""
    best: tuple[Checkpoint | None, str | None] = (None, None)
    for store in stores(config):
        checkpoint = store.latest()
        if checkpoint and (best[0] is None or (checkpoint.seq, checkpoint.at) > (best[0].seq, best[0].at)):
            best = (checkpoint, str(store))
    return best


# ---------------------------------------------------------------- checking a trail against one

def _head(db: Database) -> tuple[int, str]:
    with db.session() as session:
        row = session.execute(select(AuditEvent.seq, AuditEvent.row_hash).where(AuditEvent.seq.is_not(None))
                              .order_by(AuditEvent.seq.desc()).limit(1)).first()
    return (row.seq, row.row_hash) if row else (0, audit.GENESIS)


def _hash_at(db: Database, seq: int) -> str | None:
    if seq == 0:
        return audit.GENESIS
    with db.session() as session:
        return session.scalar(select(AuditEvent.row_hash).where(AuditEvent.seq == seq))


def against_checkpoint(db: Database, checkpoint: Checkpoint, report: audit.ChainReport) -> str | None:
    """What is wrong with the trail given `checkpoint`, naming the first broken seq; None if nothing.

    `report` is a walk that found the chain intact: of the whole chain, or of the rows since the
    checkpoint (`since_checkpoint`).
    """
    head_seq = report.last_seq or 0
    if head_seq < checkpoint.seq:
        first = head_seq + 1
        missing = f"seq {first}" if first == checkpoint.seq else f"seq {first} to {checkpoint.seq}"
        return (f"audit trail broken at seq {first}: rows deleted from the end: {missing} not found, but the "
                f"checkpoint of {checkpoint.at} covers the trail up to seq {checkpoint.seq}")
    if report.unkeyed_until > checkpoint.unkeyed_until:
        first = checkpoint.unkeyed_until + 1
        return (f"audit trail broken at seq {first}: rewritten without the key: linked by plain SHA-256, but the "
                f"checkpoint of {checkpoint.at} says keyed links begin at seq {first}")
    if _hash_at(db, checkpoint.seq) != checkpoint.row_hash:
        # Rows removed and the gap refilled by new rows: the first of those was written after the checkpoint.
        with db.session() as session:
            later = session.scalar(select(AuditEvent.seq).where(AuditEvent.seq <= checkpoint.seq,
                                                                AuditEvent.at > checkpoint.taken_at)
                                   .order_by(AuditEvent.seq).limit(1))
        if later is not None:
            return (f"audit trail broken at seq {later}: rows deleted and replaced: seq {later} was written after "
                    f"the checkpoint of {checkpoint.at}, which covers the trail up to seq {checkpoint.seq}")
        return (f"audit trail broken at seq {checkpoint.seq}: its hash is not the one the checkpoint of "
                f"{checkpoint.at} recorded (the row, or the rows before it, were rewritten)")
    return None


def since_checkpoint(db: Database, checkpoint: Checkpoint) -> tuple[str | None, audit.ChainReport]:
    """Check only the rows written since `checkpoint` (and that its row is still as it was)."""
    report = audit.verify_chain(db, after=(checkpoint.seq, checkpoint.row_hash, checkpoint.unkeyed_until))
    if not report.intact:
        return report.lines()[-1], report
    if report.checked == 0:  # nothing after the checkpoint: the head is wherever the trail now ends
        head_seq, head_hash = _head(db)
        report = audit.ChainReport(0, head_seq or None, head_hash, unkeyed_until=checkpoint.unkeyed_until)
    return against_checkpoint(db, checkpoint, report), report


def check_signature(checkpoint: Checkpoint, key: bytes, source: str) -> tuple[int, str] | None:
    """(exit code, message) when the checkpoint cannot be trusted with this key, else None."""
    if checkpoint.key_id != key_id(key):
        return 2, (f"wrong key: the latest checkpoint ({source}, seq {checkpoint.seq}, {checkpoint.at}) was signed "
                   f"with key id {checkpoint.key_id}, but ECAF_AUDIT_KEY has key id {key_id(key)}")
    if not checkpoint.signature_valid(key):
        return 1, (f"checkpoint forged or altered: the latest checkpoint ({source}, seq {checkpoint.seq}) "
                   "does not carry a valid signature for ECAF_AUDIT_KEY")
    return None


@dataclass
class Outcome:
    """What a command prints, and its exit code: 0 verified, 1 broken, 2 could not be fully verified."""
    lines: list[str]
    exit_code: int


def verify_trail(db: Database, config: Config, checkpoint_file: Path | None = None,
                 batch_size: int = 1000) -> Outcome:
    """`ecaf audit verify`: the keyed chain row by row, then the latest checkpoint."""
    try:
        key = config.audit_signing_key()
    except AuditKeyMissing as exc:
        return Outcome([f"cannot verify: {exc}"], 2)
    try:
        if checkpoint_file is not None:
            checkpoint, source = Checkpoint.from_json(checkpoint_file.read_bytes(), str(checkpoint_file)), \
                str(checkpoint_file)
        else:
            checkpoint, source = latest_checkpoint(config)
    except (CheckpointError, OSError) as exc:
        return Outcome([f"cannot verify: {exc}"], 2)
    if checkpoint is not None:
        untrusted = check_signature(checkpoint, key, source)
        if untrusted:
            return Outcome([untrusted[1]], untrusted[0])
    report = audit.verify_chain(db, batch_size)
    lines = report.lines()
    if not report.intact:
        return Outcome(lines, 1)
    if checkpoint is None:
        where = ", ".join(str(s) for s in stores(config))
        reason = f"no checkpoint found in {where}" if where else \
            "no checkpoint store configured (ECAF_AUDIT_CHECKPOINT_DIR or ECAF_AUDIT_CHECKPOINT_URL)"
        return Outcome(lines + [f"not verified against a checkpoint: {reason}. Rows deleted from the end of the "
                                "trail cannot be detected without one; run `ecaf audit checkpoint`"]
                       + _restarts(db), 2)
    problem = against_checkpoint(db, checkpoint, report)
    if problem:
        return Outcome(lines[:1] + [problem], 1)
    since = (report.last_seq or 0) - checkpoint.seq
    return Outcome(lines + [f"matches the checkpoint of {checkpoint.at} (seq {checkpoint.seq}, {source}); "
                            f"{since} row(s) written since"] + _restarts(db), 0)


def _restarts(db: Database) -> list[str]:
    """Checkpoints begun again on an empty store: each after the first means the store was lost or emptied."""
    with db.session() as session:
        starts = session.execute(select(AuditEvent.seq, AuditEvent.at)
                                 .where(AuditEvent.action == "audit_checkpoints_started")
                                 .order_by(AuditEvent.seq)).all()
    if len(starts) < 2:
        return []
    when = ", ".join(f"seq {s.seq} ({s.at:%Y-%m-%d %H:%M})" for s in starts[1:])
    return [f"checkpoints were started again on an empty store at {when}: make sure each loss of the "
            "checkpoint store is accounted for (rows deleted just before one would not show)"]


# ---------------------------------------------------------------- writing one

def write_checkpoint(db: Database, config: Config, *, force: bool = True) -> Outcome:
    """Check the rows since the latest checkpoint, then sign the head and send it to every store.

    Refuses (exit 1) when the trail lost or changed rows since the latest checkpoint, so a
    checkpoint never vouches for a trail cut short. Without `force` it writes only when the head
    moved and the latest checkpoint is older than the configured interval (the worker's way).
    """
    key = config.audit_signing_key()
    try:
        targets = stores(config)
    except CheckpointError as exc:
        return Outcome([f"no checkpoint written: {exc}"], 2)
    if not targets:
        return Outcome(["no checkpoint store configured: set ECAF_AUDIT_CHECKPOINT_DIR or "
                        "ECAF_AUDIT_CHECKPOINT_URL"], 2)
    try:
        previous, source = latest_checkpoint(config)
    except CheckpointError as exc:
        return Outcome([f"no checkpoint written: {exc}"], 1)
    if previous is not None:
        untrusted = check_signature(previous, key, source)
        if untrusted:
            return Outcome([f"no checkpoint written: {untrusted[1]}"], untrusted[0])
        problem, report = since_checkpoint(db, previous)
        if problem:
            return Outcome([f"no checkpoint written: {problem}"], 1)
        recent = now() - previous.taken_at < timedelta(seconds=config.audit_checkpoint_interval_seconds)
        if not force and ((report.last_seq or 0) == previous.seq or recent):
            return Outcome([f"no checkpoint due (latest: seq {previous.seq}, {previous.at})"], 0)
    else:
        report = audit.verify_chain(db)
        if not report.intact:
            return Outcome(["no checkpoint written:"] + report.lines()[1:], 1)
        # A store found empty is new or was lost: the trail itself says when checkpoints (re)started.
        with db.session() as session:
            audit.record(session, "audit_checkpoints_started", head_seq=report.last_seq or 0,
                         stores=[str(s) for s in targets])
        report = audit.verify_chain(db, after=(report.last_seq or 0, report.last_hash or audit.GENESIS,
                                               report.unkeyed_until))
        if not report.intact:
            return Outcome(["no checkpoint written:"] + report.lines()[1:], 1)
    # What was just checked is what is signed: rows committed meanwhile wait for the next checkpoint.
    checkpoint = Checkpoint(seq=report.last_seq or 0, row_hash=report.last_hash or audit.GENESIS,
                            at=now().isoformat(timespec="microseconds"), unkeyed_until=report.unkeyed_until,
                            key_id=key_id(key)).signed(key)
    written, failed = [], []
    for store in targets:
        try:
            written.append(store.write(checkpoint))
        except (CheckpointError, OSError) as exc:
            failed.append(f"not written to {store}: {exc}")
    lines = [f"checkpoint of seq {checkpoint.seq} (hash {checkpoint.row_hash}) written to {w}" for w in written]
    return Outcome(lines + failed, 1 if failed else 0)


def checkpoint_if_due(runtime) -> None:
    """The worker's periodic checkpoint (from the sweep): quiet when there is nothing to do."""
    config = runtime.config
    if not stores(config):
        return
    outcome = write_checkpoint(runtime.db, config, force=False)
    for line in outcome.lines:
        (log.error if outcome.exit_code else log.info)("audit checkpoint: %s", line)
