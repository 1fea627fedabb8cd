"""A tamper-evident audit trail: keyed links, signed checkpoints outside the database, and what
`ecaf audit verify` says when someone with the database but not the key has been at it."""
from __future__ import annotations

import json
from dataclasses import replace
from http.server import BaseHTTPRequestHandler

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app import audit
from app.audit_checkpoints import Checkpoint, DirectoryStore, key_id, verify_trail, write_checkpoint
from app.cli import main
from app.config import DEVELOPMENT_AUDIT_KEY, AuditKeyMissing, Config
from app.db import Database
from app.jobs.dispatch import InProcessDispatcher
from app.models import AuditEvent
from app.models.audit import AuditKeyUnavailable, chain_hash, keyed_hash
from tests.conftest import TEST_AUDIT_KEY, local_http_server
from tests.test_audit_trail import _chain, _tamper, _write

OTHER_KEY = "another-key-entirely-0123456789abcdef0123456789"


@pytest.fixture
def store(runtime, tmp_path):
    """The runtime's settings with a checkpoint directory."""
    runtime.config = replace(runtime.config, audit_checkpoint_dir=tmp_path / "checkpoints")
    return runtime.config


@pytest.fixture
def command(runtime, tmp_path, monkeypatch):
    """`ecaf audit ...` as an operator runs it, with the same database, key and checkpoint directory."""
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    monkeypatch.setenv("ECAF_AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("ECAF_AUDIT_CHECKPOINT_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return lambda *args: CliRunner().invoke(main, ["audit", *args])


def _rewrite(runtime, rows, from_seq: int, make_hash, kind: str) -> None:
    """Recompute every link from `from_seq` on, as an attacker with the database would."""
    prev = next((r.row_hash for r in rows if r.seq == from_seq - 1), audit.GENESIS)
    for row in rows:
        if row.seq < from_seq:
            continue
        new_hash = make_hash(row.seq, row.at, row.actor_id, row.action, row.episode_id, row.detail, prev)
        _tamper(runtime, "UPDATE audit_event SET prev_hash = :p, row_hash = :h, link_kind = :k WHERE seq = :s",
                p=prev, h=new_hash, k=kind, s=row.seq)
        prev = new_hash


# ---------------------------------------------------------------- keyed links

def test_rows_are_linked_by_an_hmac_the_database_does_not_hold(runtime, people):
    _write(runtime, 3)
    rows = _chain(runtime)
    assert {r.link_kind for r in rows} == {"hmac-sha256"}
    first = rows[0]
    fields = (first.seq, first.at, first.actor_id, first.action, first.episode_id, first.detail, first.prev_hash)
    assert first.row_hash == keyed_hash(TEST_AUDIT_KEY.encode(), *fields) != chain_hash(*fields)
    assert audit.verify_chain(runtime.db).intact
    keyless = Database(runtime.config.database_url)  # reads, but cannot seal rows it could not prove
    try:
        with pytest.raises(AuditKeyUnavailable), keyless.session() as session:
            audit.record(session, "test_written")
        assert "no audit key" in audit.verify_chain(keyless).problem
    finally:
        keyless.dispose()


@pytest.mark.parametrize("kind", ["sha256", "hmac-sha256"])
def test_a_chain_rewritten_with_fresh_sha256_hashes_is_found(runtime, people, store, command, kind):
    _write(runtime, 4)
    assert write_checkpoint(runtime.db, store).exit_code == 0
    _write(runtime, 2)
    rows = _chain(runtime)
    _tamper(runtime, "UPDATE audit_event SET detail = :d WHERE seq = 3", d='{"i": "rewritten"}')
    rows = _chain(runtime)
    _rewrite(runtime, rows, 1, chain_hash, kind)  # every link recomputed, as the old unkeyed chain allowed

    result = command("verify")
    assert result.exit_code == 1, result.output
    if kind == "sha256":  # passed off as rows from before keyed links: the signed checkpoint says otherwise
        assert "audit trail broken at seq 1: rewritten without the key: linked by plain SHA-256, but the " \
               "checkpoint" in result.output
    else:
        assert "audit trail broken at seq 1 (id " in result.output and "does not match its keyed hash" in result.output


def test_rows_rewritten_part_way_with_sha256_or_another_key_are_found_at_the_first(runtime, people):
    _write(runtime, 6)
    _tamper(runtime, "UPDATE audit_event SET detail = :d WHERE seq = 4", d='{"i": "rewritten"}')
    _rewrite(runtime, _chain(runtime), 4, chain_hash, "sha256")
    report = audit.verify_chain(runtime.db)
    assert report.broken_seq == 4 and "plain SHA-256 link after keyed links" in report.problem

    other = OTHER_KEY.encode()
    _rewrite(runtime, _chain(runtime), 4, lambda *f: keyed_hash(other, *f), "hmac-sha256")
    report = audit.verify_chain(runtime.db)
    assert report.broken_seq == 4 and "does not match its keyed hash" in report.problem


def test_old_unkeyed_rows_are_no_hiding_place(runtime, people, store):
    _write(runtime, 3)
    # Rows from before keyed links: plain SHA-256, as migration 0010 labels them.
    _rewrite(runtime, _chain(runtime), 1, chain_hash, "sha256")
    _write(runtime, 2)
    report = audit.verify_chain(runtime.db)
    assert report.intact and report.unkeyed_until == 3
    assert "seq 1 to 3 are linked by plain SHA-256" in report.lines()[-1]
    assert write_checkpoint(runtime.db, store).exit_code == 0

    # An old row changed and the old chain recomputed: the first keyed row no longer vouches for it.
    _tamper(runtime, "UPDATE audit_event SET detail = :d WHERE seq = 2", d='{"i": "rewritten"}')
    rows = _chain(runtime)
    _rewrite(runtime, [r for r in rows if r.seq <= 3], 2, chain_hash, "sha256")
    report = audit.verify_chain(runtime.db)
    assert report.broken_seq == 4 and report.problem.startswith("link to previous broken")

    # Every row relabelled as old: the checkpoint says where the plain links ended.
    _rewrite(runtime, _chain(runtime), 1, chain_hash, "sha256")
    assert audit.verify_chain(runtime.db).intact  # alone, the chain cannot tell
    outcome = verify_trail(runtime.db, store)
    assert outcome.exit_code == 1 and "audit trail broken at seq 4: rewritten without the key" in outcome.lines[-1]


# ---------------------------------------------------------------- checkpoints

def test_deleting_the_newest_rows_is_found_through_the_checkpoint(runtime, people, command):
    _write(runtime, 5)
    written = command("checkpoint")
    assert written.exit_code == 0 and "checkpoint of seq 6" in written.output, written.output
    assert _chain(runtime)[-1].action == "audit_checkpoints_started"  # an empty store is recorded in the trail
    assert command("verify").exit_code == 0

    _tamper(runtime, "DELETE FROM audit_event WHERE seq >= 5")
    assert audit.verify_chain(runtime.db).intact  # what the chain alone would say
    result = command("verify")
    assert result.exit_code == 1
    assert "audit trail broken at seq 5: rows deleted from the end: seq 5 to 6 not found" in result.output

    refused = command("checkpoint")  # never vouches for a trail cut short
    assert refused.exit_code == 1 and "no checkpoint written" in refused.output
    assert command("verify").exit_code == 1

    _write(runtime, 3)  # the gap refilled by new rows: the first of them was written after the checkpoint
    result = command("verify")
    assert result.exit_code == 1 and "audit trail broken at seq 5: rows deleted and replaced" in result.output


def test_checkpoints_to_a_directory_follow_the_head(runtime, people, store, command):
    _write(runtime, 2)
    assert command("checkpoint").exit_code == 0
    _write(runtime, 3)
    assert command("checkpoint").exit_code == 0
    files = sorted((store.audit_checkpoint_dir).glob("checkpoint-*.json"))
    assert len(files) == 2
    latest = Checkpoint.from_json(files[-1].read_text(), "latest")
    head = _chain(runtime)[-1]
    assert (latest.seq, latest.row_hash) == (head.seq, head.row_hash)
    assert latest.key_id == key_id(TEST_AUDIT_KEY.encode()) and latest.signature_valid(TEST_AUDIT_KEY.encode())
    assert TEST_AUDIT_KEY not in files[-1].read_text()
    result = command("verify")
    assert result.exit_code == 0 and f"matches the checkpoint of {latest.at} (seq {latest.seq}" in result.output

    # An older checkpoint given by hand (fetched from elsewhere) still checks the rows it covers.
    _tamper(runtime, "DELETE FROM audit_event WHERE seq = :s", s=head.seq)
    result = command("verify", "--checkpoint", str(files[-1]))
    assert result.exit_code == 1 and f"audit trail broken at seq {head.seq}: rows deleted" in result.output


def test_a_forged_checkpoint_is_refused(runtime, people, store, command):
    _write(runtime, 2)
    assert command("checkpoint").exit_code == 0
    path = next(store.audit_checkpoint_dir.glob("checkpoint-*.json"))
    data = json.loads(path.read_text())
    data["unkeyed_until"] = data["seq"]  # pretend every row was unkeyed, so a rewritten chain would pass
    path.write_text(json.dumps(data))
    result = command("verify")
    assert result.exit_code == 1 and "checkpoint forged or altered" in result.output


def test_a_wrong_key_is_said_plainly(runtime, people, command, monkeypatch):
    _write(runtime, 2)
    assert command("checkpoint").exit_code == 0
    monkeypatch.setenv("ECAF_AUDIT_KEY", OTHER_KEY)
    result = command("verify")
    assert result.exit_code == 2
    assert f"wrong key: the latest checkpoint" in result.output
    assert f"ECAF_AUDIT_KEY has key id {key_id(OTHER_KEY.encode())}" in result.output
    assert command("checkpoint").exit_code == 2, "nor does it checkpoint with the wrong key"


def test_a_missing_checkpoint_or_key_is_said_plainly(runtime, people, command, monkeypatch, tmp_path):
    _write(runtime, 2)
    result = command("verify")
    assert result.exit_code == 2 and "audit trail intact" in result.output
    assert f"not verified against a checkpoint: no checkpoint found in directory {tmp_path / 'checkpoints'}" \
        in result.output and "run `ecaf audit checkpoint`" in result.output

    monkeypatch.delenv("ECAF_AUDIT_CHECKPOINT_DIR")
    result = command("verify")
    assert result.exit_code == 2 and "no checkpoint store configured" in result.output
    assert command("checkpoint").exit_code == 2

    monkeypatch.delenv("ECAF_AUDIT_KEY")  # a deployment (DATABASE_URL set, not a local run) needs its key
    result = command("verify")
    assert result.exit_code == 2 and "ECAF_AUDIT_KEY is not set" in result.output
    assert command("checkpoint").exit_code == 2
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    for args in (["worker", "--burst"], ["timers", "sweep"]):  # nothing starts that could not seal its rows
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "ECAF_AUDIT_KEY is not set" in result.output, args


def test_production_needs_a_real_key_and_development_gets_one_with_a_warning():
    deployed = Config(database_url="postgresql://db.example/ecaf")
    with pytest.raises(AuditKeyMissing, match="is not set"):
        deployed.audit_signing_key()
    with pytest.raises(AuditKeyMissing, match="too short"):
        replace(deployed, audit_key="short").audit_signing_key()
    with pytest.raises(AuditKeyMissing, match="development key"):
        replace(deployed, audit_key=DEVELOPMENT_AUDIT_KEY.decode()).audit_signing_key()
    assert replace(deployed, audit_key=OTHER_KEY).audit_signing_key() == OTHER_KEY.encode()
    for development in (replace(deployed, testing=True), replace(deployed, local_run=True), Config()):
        assert development.audit_signing_key() == DEVELOPMENT_AUDIT_KEY


class _Endpoint(BaseHTTPRequestHandler):
    """A checkpoint service: POST stores one, GET answers the latest (404 when none)."""

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        if not self.server.received:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps(self.server.received[-1]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    with local_http_server(_Endpoint) as server:
        yield server


def test_checkpoints_to_an_http_endpoint(runtime, people, command, endpoint, monkeypatch):
    monkeypatch.delenv("ECAF_AUDIT_CHECKPOINT_DIR")
    monkeypatch.setenv("ECAF_AUDIT_CHECKPOINT_URL", f"http://127.0.0.1:{endpoint.server_port}/checkpoints")
    _write(runtime, 3)
    written = command("checkpoint")
    assert written.exit_code == 0 and "written to http://127.0.0.1" in written.output, written.output
    assert len(endpoint.received) == 1 and endpoint.received[0]["seq"] == _chain(runtime)[-1].seq
    assert command("verify").exit_code == 0

    _tamper(runtime, "DELETE FROM audit_event WHERE seq >= 3")
    result = command("verify")
    assert result.exit_code == 1 and "audit trail broken at seq 3: rows deleted from the end" in result.output

    endpoint.shutdown()  # unreachable: said, not passed
    result = command("verify")
    assert result.exit_code == 2 and "could not be read from http://127.0.0.1" in result.output


def test_the_worker_checkpoints_periodically(runtime, people, store, caplog):
    runtime.config = replace(store, audit_checkpoint_interval_seconds=0)
    directory = store.audit_checkpoint_dir
    dispatcher = InProcessDispatcher(runtime, sweep_interval=0)  # the runner `ecaf run` uses without Redis
    _write(runtime, 2)
    dispatcher.run_due()
    first = sorted(directory.glob("checkpoint-*.json"))
    assert len(first) == 1
    dispatcher.run_due()
    assert len(sorted(directory.glob("checkpoint-*.json"))) == 1, "nothing new: no new checkpoint"
    _write(runtime, 1)
    dispatcher.run_due()
    files = sorted(directory.glob("checkpoint-*.json"))
    assert len(files) == 2 and Checkpoint.from_json(files[-1].read_text(), "x").seq == _chain(runtime)[-1].seq

    runtime.config = replace(runtime.config, audit_checkpoint_interval_seconds=3600)
    _write(runtime, 1)
    dispatcher.run_due()
    assert len(sorted(directory.glob("checkpoint-*.json"))) == 2, "not due until the interval has passed"

    _tamper(runtime, "DELETE FROM audit_event WHERE seq >= :s", s=_chain(runtime)[-2].seq)
    runtime.config = replace(runtime.config, audit_checkpoint_interval_seconds=0)
    with caplog.at_level("ERROR"):
        dispatcher.run_due()
    assert len(sorted(directory.glob("checkpoint-*.json"))) == 2, "a trail cut short is never checkpointed"
    assert "rows deleted from the end" in caplog.text


def test_the_sweep_command_checkpoints_too(runtime, people, store, command):
    _write(runtime, 1)
    swept = CliRunner().invoke(main, ["timers", "sweep"])  # `ecaf timers sweep`, as an operator runs it
    assert swept.exit_code == 0, swept.output
    assert len(list(store.audit_checkpoint_dir.glob("checkpoint-*.json"))) == 1
    with runtime.db.session() as session:
        started = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit_checkpoints_started")).all()
    assert len(started) == 1 and started[0].detail["stores"] == [f"directory {store.audit_checkpoint_dir}"]


def test_a_checkpoint_store_found_empty_again_shows_in_the_trail(runtime, people, store):
    _write(runtime, 1)
    assert write_checkpoint(runtime.db, store).exit_code == 0
    for path in store.audit_checkpoint_dir.glob("checkpoint-*.json"):
        path.unlink()  # the operator lost the directory (or someone emptied it)
    assert verify_trail(runtime.db, store).exit_code == 2
    assert write_checkpoint(runtime.db, store).exit_code == 0
    with runtime.db.session() as session:
        starts = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "audit_checkpoints_started")
                                 .order_by(AuditEvent.seq)).all()
    assert [s["head_seq"] for s in starts] == [1, 2]
    outcome = verify_trail(runtime.db, store)
    assert outcome.exit_code == 0 and "checkpoints were started again on an empty store at seq 3" in outcome.lines[-1]
    assert DirectoryStore(store.audit_checkpoint_dir).latest().seq == 3


def test_a_store_that_cannot_be_written_is_said_and_the_others_still_are(runtime, people, command, monkeypatch):
    monkeypatch.setenv("ECAF_AUDIT_CHECKPOINT_URL", "http://127.0.0.1:1/checkpoints")  # nothing listens there
    _write(runtime, 1)
    result = command("checkpoint")
    assert result.exit_code != 0 and "could not be read from http://127.0.0.1:1" in result.output
    monkeypatch.delenv("ECAF_AUDIT_CHECKPOINT_URL")
    assert command("checkpoint").exit_code == 0
    with monkeypatch.context() as patched:
        patched.setenv("ECAF_AUDIT_CHECKPOINT_URL", "http://127.0.0.1:1/checkpoints")
        from app.audit_checkpoints import HttpStore
        patched.setattr(HttpStore, "latest", lambda self: None)  # readable, but refuses what is sent
        _write(runtime, 1)
        result = command("checkpoint")
    assert result.exit_code == 1
    assert "written to" in result.output and "not written to endpoint http://127.0.0.1:1" in result.output


def test_an_old_checkpoint_passed_off_as_the_newest_is_refused(runtime, people, store, command, monkeypatch):
    _write(runtime, 1)
    assert command("checkpoint").exit_code == 0
    old = next(store.audit_checkpoint_dir.glob("checkpoint-*.json"))
    _write(runtime, 2)
    assert command("checkpoint").exit_code == 0
    for path in store.audit_checkpoint_dir.glob("checkpoint-*.json"):
        if path != old:
            path.unlink()
    old.rename(store.audit_checkpoint_dir / "checkpoint-000000000099-20991231T000000000000Z.json")
    result = command("verify")
    assert result.exit_code == 2 and "not the seq its name says" in result.output

    monkeypatch.setenv("ECAF_AUDIT_CHECKPOINT_URL", "file:///etc/passwd")
    assert "must be an http(s) URL" in command("checkpoint").output
