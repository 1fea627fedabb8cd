"""The `ecaf users` commands: create an account, print a demo account's code, unlock."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from app.clock import now
from app.models import AuditEvent, User


def _run(runtime, monkeypatch, *args, input=None):
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return CliRunner().invoke(main, list(args), input=input)


def test_create_an_account_with_a_strong_password_only(runtime, people, monkeypatch):
    weak = _run(runtime, monkeypatch, "users", "create", "fay", "--email", "fay@testshire.test", "--name", "Fay Field",
                "--role", "administrator", input="password1234\npassword1234\n")
    assert weak.exit_code == 1 and "too common" in weak.output
    made = _run(runtime, monkeypatch, "users", "create", "fay", "--email", "fay@testshire.test", "--name", "Fay Field",
                "--role", "administrator", input="kettle lamp orchard river\nkettle lamp orchard river\n")
    assert made.exit_code == 0, made.output
    again = _run(runtime, monkeypatch, "users", "create", "fay2", "--email", "FAY@testshire.test", "--name", "Fay",
                 input="kettle lamp orchard river\nkettle lamp orchard river\n")
    assert again.exit_code == 1 and "already exists" in again.output
    with runtime.db.session() as session:
        fay = session.scalar(select(User).where(User.username == "fay"))
        assert fay.role == "administrator" and fay.password_hash.startswith("$argon2id$")
        assert fay.totp_secret is None, "the authenticator is set up at first sign-in"
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "account_created")) is not None


def test_codes_are_printed_for_demo_accounts_only_and_unlock_works(runtime, people, monkeypatch):
    from tests.web import give_credentials

    give_credentials(runtime, people["originator"])
    refused = _run(runtime, monkeypatch, "users", "totp", "olive")
    assert refused.exit_code == 1 and "demo accounts only" in refused.output
    with runtime.db.session() as session:
        olive = session.get(User, people["originator"])
        olive.demo_account, olive.locked_at, olive.failed_sign_ins = True, now(), 10
    printed = _run(runtime, monkeypatch, "users", "totp", "olive")
    assert printed.exit_code == 0 and printed.output.strip().isdigit() and len(printed.output.strip()) == 6
    unlocked = _run(runtime, monkeypatch, "users", "unlock", "olive", "--reason", "rang the helpdesk")
    assert unlocked.exit_code == 0
    with runtime.db.session() as session:
        olive = session.get(User, people["originator"])
        assert olive.locked_at is None and olive.failed_sign_ins == 0
