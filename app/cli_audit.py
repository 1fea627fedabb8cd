"""The `ecaf audit` commands: check the keyed audit trail, and checkpoint its head outside the database."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from app.config import AuditKeyMissing, Config


@click.group("audit", help="The audit trail.")
def audit_trail() -> None:
    pass


@audit_trail.command("verify", help="Check the audit trail's keyed hash chain row by row with ECAF_AUDIT_KEY, then "
                                    "against the latest signed checkpoint: exit 0 when both hold, 1 at the first "
                                    "broken seq (a row changed, missing, deleted from the end or re-linked without "
                                    "the key), 2 when it cannot be fully verified (no or wrong key, no checkpoint).")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows read per transaction.")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check against this checkpoint file instead of the latest in the configured store.")
def audit_verify(batch_size: int, checkpoint_file: Path | None) -> None:
    from app.audit_checkpoints import verify_trail

    _run(lambda db, config: verify_trail(db, config, checkpoint_file, batch_size))


@audit_trail.command("checkpoint", help="Sign the audit trail's head (seq, hash, time) with ECAF_AUDIT_KEY and write "
                                        "it to ECAF_AUDIT_CHECKPOINT_DIR and/or ECAF_AUDIT_CHECKPOINT_URL, after "
                                        "checking the rows since the latest checkpoint (exit 1, nothing written, "
                                        "when they are broken). The worker does this every "
                                        "ECAF_AUDIT_CHECKPOINT_INTERVAL seconds.")
def audit_checkpoint() -> None:
    from app.audit_checkpoints import write_checkpoint

    _run(write_checkpoint)


def _run(command) -> None:
    from app.db import Database

    config = Config.from_env()
    try:
        key = config.audit_signing_key()
    except AuditKeyMissing as exc:
        click.echo(f"cannot check the audit trail: {exc}", err=True)
        sys.exit(2)
    db = Database(config.database_url, audit_key=key)
    try:
        outcome = command(db, config)
    finally:
        db.dispose()
    for line in outcome.lines:
        click.echo(line)
    sys.exit(outcome.exit_code)
