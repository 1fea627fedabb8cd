"""The sign-in rules: password, then a one-time or recovery code; growing delays; a lock.

Failures are counted per account and per address. After a few failures each further attempt must
wait longer (doubling, up to five minutes); after LOCK_AFTER failures the account is locked until an
administrator unlocks it. Every message is the same whether or not the account exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, policy
from app.accounts import passwords, recovery, totp
from app.clock import as_utc, now
from app.config import Config
from app.models import SignInThrottle, User

FREE_ATTEMPTS = 3
# An office shares one address: it gets more free attempts before everyone there is slowed down.
FREE_ATTEMPTS_PER_ADDRESS = 20
MAX_DELAY_SECONDS = 300
LOCK_AFTER = 10
WRONG_DETAILS = ("Enter a correct username and password. If you have forgotten them, or your account is "
                 "locked, contact the eCAF administrator.")
WRONG_CODE = "Enter the 6-digit code shown in your authenticator app now"
WRONG_RECOVERY_CODE = "Enter one of your recovery codes that has not been used"


@dataclass
class Outcome:
    user: User | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None and self.message is None


def delay_for(failures: int, free: int = FREE_ATTEMPTS) -> int:
    """Seconds the next attempt must wait after this many consecutive failures."""
    if failures < free:
        return 0
    return min(2 ** (failures - free + 1), MAX_DELAY_SECONDS)


def _wait_seconds(failures: int, last_failure_at, free: int = FREE_ATTEMPTS) -> int:
    if not failures or last_failure_at is None:
        return 0
    ready_at = as_utc(last_failure_at) + timedelta(seconds=delay_for(failures, free))
    return max(0, int((ready_at - now()).total_seconds() + 0.999))


def _throttle(session: Session, address: str | None) -> SignInThrottle | None:
    return session.get(SignInThrottle, f"addr:{address}") if address else None


def _too_soon(session: Session, user: User | None, address: str | None) -> str | None:
    waits = [0]
    if user is not None:
        waits.append(_wait_seconds(user.failed_sign_ins, user.last_failed_at))
    throttle = _throttle(session, address)
    if throttle is not None:
        waits.append(_wait_seconds(throttle.failures, throttle.last_failure_at, FREE_ATTEMPTS_PER_ADDRESS))
    wait = max(waits)
    if wait:
        return f"Too many attempts. Wait {wait} seconds, then try again."
    return None


def _fail(session: Session, user: User | None, address: str | None, stage: str) -> None:
    if user is not None:
        user.failed_sign_ins = (user.failed_sign_ins or 0) + 1
        user.last_failed_at = now()
        if user.failed_sign_ins >= LOCK_AFTER and user.locked_at is None:
            user.locked_at = now()
            audit.record(session, "account_locked", actor_id=user.id, failures=user.failed_sign_ins)
    if address:
        throttle = _throttle(session, address)
        if throttle is None:
            throttle = SignInThrottle(key=f"addr:{address}", failures=0, last_failure_at=now())
            session.add(throttle)
        throttle.failures += 1
        throttle.last_failure_at = now()
    audit.record(session, "sign_in_failed", actor_id=user.id if user else None, stage=stage, address=address)


def _succeed(session: Session, user: User, address: str | None) -> None:
    user.failed_sign_ins = 0
    user.last_failed_at = None
    throttle = _throttle(session, address)
    if throttle is not None:
        session.delete(throttle)


def find_user(session: Session, username: str) -> User | None:
    name = username.strip().lower()
    if not name or len(name) > 254:
        return None
    return session.scalar(select(User).where(
        (func.lower(User.username) == name) | (func.lower(User.email) == name)))


def may_sign_in(user: User | None) -> bool:
    return policy.may_present_secrets(user)


def vetting_refusal(session: Session, user: User, address: str | None) -> Outcome | None:
    """An account without a current vetting check and training cannot be used (N4). Called only
    once a secret is proven, so saying why reveals nothing to a guesser."""
    problem = policy.unusable_because(user, now().date())
    if problem is None:
        return None
    audit.record(session, "sign_in_refused", actor_id=user.id, why=problem, address=address)
    return Outcome(message=f"Your account cannot be used because {problem}. "
                           "Contact your eCAF administrator to have your vetting or training recorded.")


def check_password(session: Session, username: str, password: str, address: str | None) -> Outcome:
    """First factor. A locked or disabled account fails exactly like a wrong password."""
    user = find_user(session, username)
    waiting = _too_soon(session, user, address)
    if waiting:
        return Outcome(message=waiting)
    right = passwords.verify_password(user.password_hash if user else None, password[:passwords.MAX_LENGTH * 4])
    if not right or not may_sign_in(user):
        _fail(session, user, address, "password")
        return Outcome(message=WRONG_DETAILS)
    refusal = vetting_refusal(session, user, address)
    if refusal:
        return refusal
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return Outcome(user=user)


def check_code(session: Session, config: Config, user: User, code: str, address: str | None) -> Outcome:
    """Second factor: a TOTP code not used before."""
    waiting = _too_soon(session, user, address)
    if waiting:
        return Outcome(message=waiting)
    if not may_sign_in(user) or not totp.accept_code(session, config, user, code):
        _fail(session, user, address, "code")
        return Outcome(message=WRONG_CODE)
    refusal = vetting_refusal(session, user, address)
    if refusal:
        return refusal
    _succeed(session, user, address)
    return Outcome(user=user)


def check_recovery_code(session: Session, user: User, code: str, address: str | None) -> Outcome:
    waiting = _too_soon(session, user, address)
    if waiting:
        return Outcome(message=waiting)
    if not may_sign_in(user) or not recovery.use(session, user, code):
        _fail(session, user, address, "recovery_code")
        return Outcome(message=WRONG_RECOVERY_CODE)
    refusal = vetting_refusal(session, user, address)
    if refusal:
        return refusal
    _succeed(session, user, address)
    audit.record(session, "recovery_code_used", actor_id=user.id, remaining=recovery.remaining(session, user))
    return Outcome(user=user)


def unlock(session: Session, user: User, actor_id: int | None, reason: str) -> None:
    user.locked_at = None
    user.failed_sign_ins = 0
    user.last_failed_at = None
    audit.record(session, "account_unlocked", actor_id=actor_id, user_id=user.id, reason=reason)
