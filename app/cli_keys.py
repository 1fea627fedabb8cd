"""The `ecaf keys` commands, and the check every command that needs SECRET_KEY and ECAF_TOTP_KEY makes."""
from __future__ import annotations

import sys

import click

from app.config import Config, SecretsMissing


def require_secrets(config: Config) -> None:
    """Stops the command, saying why (exit 2), unless SECRET_KEY and ECAF_TOTP_KEY are usable here."""
    try:
        config.check_secrets()
    except SecretsMissing as exc:
        click.echo(f"eCAF will not start: {exc}", err=True)
        sys.exit(2)


@click.group("keys", help="Keys held outside the database (SECRET_KEY, ECAF_TOTP_KEY).")
def keys() -> None:
    pass


@keys.command("rotate-totp", help="Re-encrypt every stored authenticator secret under the newest ECAF_TOTP_KEY "
                                  "(the first of its comma-separated keys). Put the new key first, run this, then "
                                  "remove the old keys. Secrets sealed under the key earlier releases derived from "
                                  "SECRET_KEY are moved too. Audited; running it again changes nothing. Exit 1 when "
                                  "a secret opens under no key (those users set up their authenticator again).")
@click.option("--old-secret-key", "ask_old", is_flag=True,
              help="Also open secrets sealed under an earlier SECRET_KEY (for example the public default a "
                   "deployment once ran on): asked for, not echoed.")
def rotate_totp(ask_old: bool) -> None:
    from app import audit
    from app.accounts import totp
    from app.cli import _runtime
    from app.cli_users import _operator

    runtime = _runtime()
    olds = (click.prompt("The earlier SECRET_KEY", hide_input=True),) if ask_old else ()
    with runtime.db.session() as session:
        result = totp.rotate(session, runtime.config, olds)
        audit.record(session, "totp_secrets_rotated", via="command line", operator=_operator(),
                     rotated=result.rotated, already_current=result.current, unreadable=len(result.unreadable))
    click.echo(f"{result.rotated} authenticator secrets re-encrypted under the newest key, "
               f"{result.current} already under it")
    if result.unreadable:
        click.echo(f"{len(result.unreadable)} open under no key, left as they were: " + ", ".join(result.unreadable),
                   err=True)
        sys.exit(1)
