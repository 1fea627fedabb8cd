"""Throttling that cannot be turned against users: wrong passwords slow down per username text and per
address but never lock; a lock follows wrong second factors only, lifts itself and emails the user."""
from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import time_machine
from click.testing import CliRunner
from sqlalchemy import func, select

from app.accounts import passwords, sign_in, throttle
from app.cli import main
from app.clock import now
from app.jobs.sweep import sign_in_housekeeping
from app.models import AuditEvent, OutboxMessage, SignInThrottle, User
from tests.web import PASSWORD, browser, text_of

OLIVE = "olive"
WRONG = "not the password at all"


def _from(app, address: str):
    client = browser(app)
    client.client.environ_base["REMOTE_ADDR"] = address
    return client


def _events(runtime, action, **detail):
    with runtime.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
    return [row for row in rows if all((row.detail or {}).get(k) == v for k, v in detail.items())]


def _olive(runtime, people) -> User:
    with runtime.db.session() as session:
        user = session.get(User, people["originator"])
        session.expunge(user)
        return user


def _waited(response) -> int | None:
    found = re.search(r"Wait (\d+) seconds", text_of(response))
    return int(found.group(1)) if found else None


def _page(response, typed: str) -> str:
    """The page with what differs on every response (nonce, CSRF token) and what was typed taken out."""
    html = re.sub(r'nonce="[^"]*"', "", response.get_data(as_text=True))
    html = re.sub(r'name="csrf_token" value="[^"]*"|value="[^"]*" name="csrf_token"', "", html)
    return html.replace(f'value="{typed}"', "")


def _wrong_code(secret: str) -> str:
    return "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"


def test_a_hundred_wrong_passwords_from_anyone_leave_the_user_able_to_sign_in(web):
    runtime, people = web["runtime"], web["people"]
    attacker, olive = _from(web["app"], "203.0.113.9"), _from(web["app"], "192.0.2.20")
    with time_machine.travel(now(), tick=False) as clock:
        failures = 0
        while failures < 100:  # each one a real guess: the attacker waits out every delay
            answer = attacker.post("/sign-in", {"username": OLIVE, "password": WRONG})
            assert answer.status_code == 400
            wait = _waited(answer)
            if wait:
                clock.shift(timedelta(seconds=wait))
            else:
                assert sign_in.WRONG_DETAILS in text_of(answer)
                failures += 1
        user = _olive(runtime, people)
        assert user.locked_at is None and not user.failed_sign_ins, "wrong passwords never lock"
        assert not _events(runtime, "account_locked")
        assert len(_events(runtime, "sign_in_failed", stage="password")) == 100
        # The documented delay: at most MAX_DELAY_SECONDS after the attacker's last guess, for everyone.
        first = olive.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
        assert _waited(first) == throttle.MAX_DELAY_SECONDS
        clock.shift(timedelta(seconds=throttle.MAX_DELAY_SECONDS))
        olive.sign_in(OLIVE, web["secrets"]["originator"])
        assert olive.get("/").status_code == 200
        # A full sign-in starts the name's counter afresh: one mistype later costs nothing.
        fresh = _from(web["app"], "192.0.2.21")
        assert sign_in.WRONG_DETAILS in text_of(fresh.post("/sign-in", {"username": OLIVE, "password": WRONG}))
        assert fresh.post("/sign-in", {"username": OLIVE, "password": PASSWORD}).status_code == 302


def test_known_and_unknown_usernames_get_identical_answers_at_every_attempt_count(web, monkeypatch):
    runtime = web["runtime"]
    known, unknown = _from(web["app"], "198.51.100.1"), _from(web["app"], "198.51.100.2")
    hashed = []
    real_hasher = passwords._hasher

    class Spy:
        def verify(self, stored, password):
            hashed.append(stored)
            return real_hasher.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Spy())

    def both(username_known="OLIVE ", username_unknown="nobody.here"):
        a = known.post("/sign-in", {"username": username_known, "password": WRONG})
        b = unknown.post("/sign-in", {"username": username_unknown, "password": WRONG})
        assert a.status_code == b.status_code == 400
        assert text_of(a) == text_of(b)
        assert _page(a, username_known) == _page(b, username_unknown)
        return a

    with time_machine.travel(now(), tick=False) as clock:
        for attempt in range(1, 16):
            del hashed[:]
            answer = both()
            assert sign_in.WRONG_DETAILS in text_of(answer), attempt
            assert len(hashed) == 2 and hashed[1] == passwords._DUMMY_HASH and hashed[0] != hashed[1], \
                "a hash is checked for the unknown name too"
            delay = throttle.delay_for(attempt)
            if delay:  # asking too soon: the same "wait N seconds" for both, and nothing hashed
                del hashed[:]
                assert _waited(both()) == delay
                clock.shift(timedelta(seconds=delay - 1))
                assert _waited(both()) == 1
                clock.shift(timedelta(seconds=1))
                assert hashed == []
    assert len(_events(runtime, "sign_in_failed", stage="password")) == 30
    user = _olive(runtime, web["people"])
    assert user.locked_at is None and not user.failed_sign_ins
    with runtime.db.session() as session:
        keys = session.scalars(select(SignInThrottle.key)).all()
    assert not any("olive" in key or "nobody" in key for key in keys), "only keyed hashes of what was typed"


def test_wrong_second_factors_lock_the_account_which_unlocks_itself_and_emails_the_user(web):
    runtime, people, secret = web["runtime"], web["people"], web["secrets"]["originator"]
    attacker = _from(web["app"], "203.0.113.50")
    with time_machine.travel(now(), tick=False) as clock:
        for attempt in range(throttle.LOCK_AFTER):
            clock.shift(timedelta(seconds=throttle.delay_for(attempt) + 1))
            assert attacker.post("/sign-in", {"username": OLIVE, "password": PASSWORD}).status_code == 302
            if attempt % 2:  # codes and recovery codes count the same way
                answer = attacker.post("/sign-in/recovery-code", {"recovery_code": "abcd-efgh-ijkl"})
            else:
                answer = attacker.post("/sign-in/code", {"code": _wrong_code(secret)})
            assert answer.status_code == 400
        assert "your account is locked for 30 minutes" in text_of(answer)
        [locked] = _events(runtime, "account_locked")
        assert locked.actor_id == people["originator"] and locked.detail["failures"] == throttle.LOCK_AFTER
        assert len(_events(runtime, "sign_in_failed", stage="code")) == 5
        assert len(_events(runtime, "sign_in_failed", stage="recovery_code")) == 5
        with runtime.db.session() as session:
            [email] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "account_locked")).all()
            olive_email = session.get(User, people["originator"]).email
        assert email.recipient == olive_email and "locked until" in email.body and "30 minutes" in email.body

        # Locked: the right password answers exactly as a wrong one (and as an unknown name).
        olive = _from(web["app"], "192.0.2.30")
        refused = olive.post("/sign-in", {"username": OLIVE, "password": PASSWORD})
        assert refused.status_code == 400 and sign_in.WRONG_DETAILS in text_of(refused)

        clock.shift(timedelta(minutes=30))
        olive.sign_in(OLIVE, secret)
        assert olive.get("/").status_code == 200
        assert len(_events(runtime, "account_lock_expired")) == 1
        user = _olive(runtime, people)
        assert user.locked_at is None and user.failed_sign_ins == 0
        assert len(_events(runtime, "signed_in")) == 1


def test_the_lock_lifts_itself_in_the_sweep_and_a_passkey_failure_counts_like_a_code(web):
    runtime, people = web["runtime"], web["people"]
    config = runtime.config
    with time_machine.travel(now(), tick=False) as clock:
        with runtime.db.session() as session:
            user = session.get(User, people["originator"])
            queued = [throttle.second_factor_failed(session, user, config=config, stage="passkey")
                      for _ in range(throttle.LOCK_AFTER)]
            assert queued[-1] is not None and not any(queued[:-1]) and user.locked_at is not None
        assert len(_events(runtime, "sign_in_failed", stage="passkey")) == throttle.LOCK_AFTER
        clock.shift(timedelta(minutes=config.sign_in_lock_minutes) - timedelta(seconds=1))
        assert sign_in_housekeeping(runtime) == 0
        clock.shift(timedelta(seconds=1))
        assert sign_in_housekeeping(runtime) == 1
        assert _olive(runtime, people).locked_at is None
        [lifted] = _events(runtime, "account_lock_expired")
        assert lifted.detail["user_id"] == people["originator"]
        # The count stays until a sign-in succeeds: the next wrong one locks again at once.
        with runtime.db.session() as session:
            user = session.get(User, people["originator"])
            assert throttle.second_factor_failed(session, user, config=config, stage="code") is not None
        assert len(_events(runtime, "account_locked")) == 2


def test_an_administrator_unlock_lifts_a_second_factor_lock(web, monkeypatch):
    runtime, people = web["runtime"], web["people"]
    with runtime.db.session() as session:
        user = session.get(User, people["originator"])
        for _ in range(throttle.LOCK_AFTER):
            throttle.second_factor_failed(session, user, config=runtime.config, stage="code")
    monkeypatch.setenv("DATABASE_URL", runtime.config.database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(main, ["users", "unlock", OLIVE, "--reason", "rang the helpdesk"])
    assert result.exit_code == 0, result.output
    user = _olive(runtime, people)
    assert user.locked_at is None and user.failed_sign_ins == 0
    [unlocked] = _events(runtime, "account_unlocked")
    assert unlocked.detail["reason"] == "rang the helpdesk"
    browser(web["app"]).sign_in(OLIVE, web["secrets"]["originator"])


def test_idle_counters_are_forgotten(web):
    runtime = web["runtime"]
    client = _from(web["app"], "198.51.100.77")
    with time_machine.travel(now(), tick=False) as clock:
        for _ in range(throttle.FREE_ATTEMPTS):
            client.post("/sign-in", {"username": "someone", "password": WRONG})
        assert _waited(client.post("/sign-in", {"username": "someone", "password": WRONG})) == 2
        clock.shift(throttle.FORGET_AFTER)
        sign_in_housekeeping(runtime)
        with runtime.db.session() as session:
            assert session.scalar(select(func.count()).select_from(SignInThrottle)) == 0
        assert sign_in.WRONG_DETAILS in text_of(client.post("/sign-in", {"username": "someone", "password": WRONG}))
