"""The `ecaf users` commands: create an account, grant and revoke a role, print a demo account's code, unlock."""
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


def _audit(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_an_operator_grants_and_revokes_the_process_owner_role_and_both_are_audited(runtime, people, monkeypatch):
    import getpass

    operator = getpass.getuser()
    granted = _run(runtime, monkeypatch, "users", "grant", "leah", "--role", "process_owner",
                   "--reason", "Appointed by the national board")
    assert granted.exit_code == 0, granted.output
    assert _role_of(runtime, people["lead"]) == "process_owner"
    [row] = _audit(runtime, "role_granted")
    assert row.actor_id is None and row.detail["user_id"] == people["lead"]
    assert (row.detail["role"], row.detail["role_from"]) == ("process_owner", "practitioner")
    assert row.detail["reason"] == "Appointed by the national board" and row.detail["operator"] == operator
    again = _run(runtime, monkeypatch, "users", "grant", "leah", "--role", "process_owner", "--reason", "Twice")
    assert again.exit_code == 0 and "nothing was changed" in again.output and len(_audit(runtime, "role_granted")) == 1

    wrong = _run(runtime, monkeypatch, "users", "revoke", "olive", "--role", "process_owner", "--reason", "Oops")
    assert wrong.exit_code == 1 and "not process_owner" in wrong.output
    silent = _run(runtime, monkeypatch, "users", "revoke", "leah", "--role", "process_owner", "--reason", " ")
    assert silent.exit_code == 2 and _role_of(runtime, people["lead"]) == "process_owner"
    revoked = _run(runtime, monkeypatch, "users", "revoke", "leah", "--role", "process_owner",
                   "--reason", "Left the board")
    assert revoked.exit_code == 0, revoked.output
    assert _role_of(runtime, people["lead"]) == "practitioner", "back to practitioner unless --to says otherwise"
    [removed] = _audit(runtime, "role_removed")
    assert (removed.detail["role"], removed.detail["role_to"]) == ("process_owner", "practitioner")
    assert removed.detail["reason"] == "Left the board" and removed.detail["operator"] == operator
    missing = _run(runtime, monkeypatch, "users", "grant", "nobody", "--role", "process_owner", "--reason", "x")
    assert missing.exit_code == 1 and "no such account" in missing.output


def test_creating_a_process_owner_on_the_command_line_records_the_role_and_the_operator(runtime, people, monkeypatch):
    import getpass

    made = _run(runtime, monkeypatch, "users", "create", "owen", "--email", "owen@testshire.test", "--name",
                "Owen Owner", "--role", "process_owner", input="kettle lamp orchard river\nkettle lamp orchard river\n")
    assert made.exit_code == 0, made.output
    [created] = _audit(runtime, "account_created")
    assert created.detail["role"] == "process_owner" and created.detail["operator"] == getpass.getuser()


def _role_of(runtime, user_id: int) -> str:
    with runtime.db.session() as session:
        return session.get(User, user_id).role
