"""Secrets required: no start on a missing, public or short SECRET_KEY or without ECAF_TOTP_KEY outside
tests and a local run; TOTP secrets rotate to a new key with every user's codes still working; a local
run generates its keys once and reuses them."""
from __future__ import annotations

import logging
import stat
from dataclasses import replace

import pyotp
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from app import create_app, keys
from app.accounts import totp
from app.cli import main
from app.config import DEVELOPMENT_SECRET_KEY, DEVELOPMENT_TOTP_KEY, Config, SecretsMissing
from app.models import AuditEvent, User
from tests.conftest import TEST_SECRET_KEY, TEST_TOTP_KEY

DEPLOYED = "postgresql://db.example/ecaf"  # never reached: each start is refused before connecting
GOOD_SECRET = "s" * 40


@pytest.mark.parametrize("secret, why", [
    ("", "SECRET_KEY is not set"),
    (DEVELOPMENT_SECRET_KEY, "public development default"),
    ("short-but-not-default", "too short"),
])
def test_the_app_refuses_to_start_on_an_unset_default_or_short_secret_key(secret, why):
    with pytest.raises(SecretsMissing, match=why):
        create_app(Config(database_url=DEPLOYED, secret_key=secret, totp_key=TEST_TOTP_KEY))


def test_a_deployment_needs_its_own_totp_key_never_one_derived_or_public():
    with pytest.raises(SecretsMissing, match="ECAF_TOTP_KEY is not set"):
        create_app(Config(database_url=DEPLOYED, secret_key=GOOD_SECRET))
    with pytest.raises(SecretsMissing, match="development key"):
        Config(database_url=DEPLOYED, secret_key=GOOD_SECRET, totp_key=DEVELOPMENT_TOTP_KEY).check_secrets()
    with pytest.raises(SecretsMissing, match="key 2 of 2 is not a Fernet key"):
        Config(database_url=DEPLOYED, secret_key=GOOD_SECRET, totp_key=f"{TEST_TOTP_KEY}, {GOOD_SECRET}").totp_keys()
    deployed = Config(database_url=DEPLOYED, secret_key=GOOD_SECRET, totp_key=f" {TEST_TOTP_KEY} ,")
    deployed.check_secrets()
    assert deployed.totp_keys() == [TEST_TOTP_KEY] and deployed.session_secret_key() == GOOD_SECRET
    # Tests (and a local run) may use development keys: the one rule, development_keys_allowed.
    assert replace(deployed, secret_key=DEVELOPMENT_SECRET_KEY, totp_key=None, testing=True).totp_keys() == \
        [DEVELOPMENT_TOTP_KEY]


def _cli(monkeypatch, *args, input=None, **env):
    for name in ("SECRET_KEY", "ECAF_TOTP_KEY", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", DEPLOYED)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(main, list(args), input=input)


@pytest.mark.parametrize("command", [("run", "--host", "0.0.0.0"), ("timers", "sweep"), ("keys", "rotate-totp"),
                                     ("demo",), ("users", "totp", "priya.shah")])
def test_commands_that_need_the_keys_refuse_to_start_without_them_and_say_why(monkeypatch, command):
    unset = _cli(monkeypatch, *command, ECAF_TOTP_KEY=TEST_TOTP_KEY)
    assert unset.exit_code == 2 and "SECRET_KEY is not set" in unset.output
    default = _cli(monkeypatch, *command, SECRET_KEY=DEVELOPMENT_SECRET_KEY, ECAF_TOTP_KEY=TEST_TOTP_KEY)
    assert default.exit_code == 2 and "public development default" in default.output
    short = _cli(monkeypatch, *command, SECRET_KEY="abc", ECAF_TOTP_KEY=TEST_TOTP_KEY)
    assert short.exit_code == 2 and "too short" in short.output
    no_totp_key = _cli(monkeypatch, *command, SECRET_KEY=GOOD_SECRET)
    assert no_totp_key.exit_code == 2 and "ECAF_TOTP_KEY is not set" in no_totp_key.output


def test_the_worker_refuses_to_start_without_the_keys(monkeypatch):
    refused = _cli(monkeypatch, "worker", "--burst", REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY="abc",
                   ECAF_TOTP_KEY=TEST_TOTP_KEY)
    assert refused.exit_code == 2 and "SECRET_KEY is too short" in refused.output


def _codes_work(runtime, config, usernames) -> None:
    """Each user's current code is accepted under `config` (the replay guard reset first)."""
    with runtime.db.session() as session:
        for user in session.scalars(select(User).where(User.username.in_(usernames))):
            user.totp_last_step = None
            session.flush()
            secret = totp.unseal(config, user.totp_secret)
            assert secret, f"{user.username}'s secret does not open"
            assert totp.accept_code(session, config, user, pyotp.TOTP(secret).now()), user.username


def test_rotation_keeps_every_users_codes_working_and_the_old_key_can_then_go(runtime, people, monkeypatch):
    from tests.web import give_credentials

    for who in ("originator", "lead"):
        give_credentials(runtime, people[who])
    with runtime.db.session() as session:  # sealed by a release that derived the key from SECRET_KEY
        admin = session.get(User, people["admin"])
        legacy = Fernet(keys.derived_totp_key(TEST_SECRET_KEY))
        admin.totp_secret = legacy.encrypt(b"JBSWY3DPEHPK3PXPJBSWY3DP").decode()
    everyone = ("olive", "leah", "adam")
    _codes_work(runtime, runtime.config, everyone)  # before: the derived key still opens, last, with a warning

    new_key = Fernet.generate_key().decode()
    both = f"{new_key},{TEST_TOTP_KEY}"
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    monkeypatch.setenv("ECAF_TOTP_KEY", both)
    monkeypatch.delenv("REDIS_URL", raising=False)
    rotated = CliRunner().invoke(main, ["keys", "rotate-totp"])
    assert rotated.exit_code == 0, rotated.output
    assert "3 authenticator secrets re-encrypted under the newest key, 0 already under it" in rotated.output
    again = CliRunner().invoke(main, ["keys", "rotate-totp"])
    assert again.exit_code == 0
    assert "0 authenticator secrets re-encrypted" in again.output and "3 already" in again.output

    new_only = replace(runtime.config, totp_key=new_key, secret_key="another secret key, 32 characters or more")
    _codes_work(runtime, new_only, everyone)  # after: the old key removed, and the derived one of no use
    with runtime.db.session() as session:
        for user in session.scalars(select(User).where(User.username.in_(everyone))):
            Fernet(new_key).decrypt(user.totp_secret.encode())
        audits = session.scalars(select(AuditEvent).where(AuditEvent.action == "totp_secrets_rotated")
                                 .order_by(AuditEvent.id)).all()
    assert [(a.detail["rotated"], a.detail["already_current"], a.detail["unreadable"]) for a in audits] == \
        [(3, 0, 0), (0, 3, 0)]
    assert all(a.detail["operator"] and a.detail["via"] == "command line" for a in audits)


def test_secrets_sealed_under_an_earlier_secret_key_move_only_when_it_is_given(runtime, people, monkeypatch):
    with runtime.db.session() as session:  # a deployment that once ran on the public default SECRET_KEY
        session.get(User, people["lead"]).totp_secret = Fernet(keys.derived_totp_key(DEVELOPMENT_SECRET_KEY)) \
            .encrypt(b"JBSWY3DPEHPK3PXPJBSWY3DP").decode()
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    stuck = CliRunner().invoke(main, ["keys", "rotate-totp"])
    assert stuck.exit_code == 1 and "1 open under no key" in stuck.output and "leah" in stuck.output
    moved = CliRunner().invoke(main, ["keys", "rotate-totp", "--old-secret-key"],
                               input=DEVELOPMENT_SECRET_KEY + "\n")
    assert moved.exit_code == 0 and "1 authenticator secrets re-encrypted" in moved.output
    assert DEVELOPMENT_SECRET_KEY not in moved.output
    with runtime.db.session() as session:
        sealed = session.get(User, people["lead"]).totp_secret
    deployed = replace(runtime.config, testing=False, database_url=DEPLOYED)
    assert totp.unseal(deployed, sealed) == "JBSWY3DPEHPK3PXPJBSWY3DP"


def test_a_local_run_generates_its_keys_once_and_reuses_them_across_restarts(tmp_path, monkeypatch, caplog):
    for name in ("SECRET_KEY", "ECAF_TOTP_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "instance" / "dev-keys.json"
    monkeypatch.setenv("ECAF_DEV_KEYS_FILE", str(key_file))
    with caplog.at_level(logging.INFO, logger="app.keys"):
        first = Config.from_env()  # the local SQLite database: development keys allowed
        first.check_secrets()
    assert "generated development keys" in caplog.text and str(key_file) in caplog.text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret_key = first.session_secret_key()
    assert secret_key not in ("", DEVELOPMENT_SECRET_KEY) and len(secret_key) >= 32
    sealed = totp.seal(first, "JBSWY3DPEHPK3PXPJBSWY3DP")

    caplog.clear()
    restarted = Config.from_env()
    with caplog.at_level(logging.INFO, logger="app.keys"):
        assert restarted.session_secret_key() == secret_key
    assert "generated" not in caplog.text
    assert totp.unseal(restarted, sealed) == "JBSWY3DPEHPK3PXPJBSWY3DP"
    local_run = Config(database_url=f"sqlite:///{tmp_path / 'x.db'}", local_run=True, dev_keys_file=key_file)
    assert local_run.session_secret_key() == secret_key and local_run.totp_keys() == restarted.totp_keys()


@pytest.mark.parametrize("command", [("run", "--host", "0.0.0.0"), ("timers", "sweep"), ("worker", "--burst")])
def test_commands_refuse_to_start_on_message_settings_that_cannot_work(monkeypatch, command):
    # (`ecaf serve` too: tests/test_serve.py, as a process of its own)
    for name in ("NOTIFY_TEMPLATES", "NOTIFY_EMAIL_TEMPLATE_ID"):
        monkeypatch.delenv(name, raising=False)
    refused = _cli(monkeypatch, *command, SECRET_KEY=GOOD_SECRET, ECAF_TOTP_KEY=TEST_TOTP_KEY,
                   REDIS_URL="redis://127.0.0.1:1/0",
                   NOTIFY_API_KEY="ecaf_live-0d3c7a4e-5b1f-4c9e-9a3d-2f6e8b7c1a90-6a1e2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b")
    assert refused.exit_code == 2 and "NOTIFY_EMAIL_TEMPLATE_ID" in refused.output
