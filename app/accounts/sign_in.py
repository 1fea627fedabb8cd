"""The sign-in rules: password, then a one-time code, recovery code or passkey; growing delays; a lock
only after the password was proven.

Password failures are counted per username text and per address (`throttle.PasswordCounters`), so a
name no account has behaves exactly like one that exists: the same delays, the same answers, the
password (or a dummy) hashed either way. They never lock an account. Second-factor failures are
counted on the account; LOCK_AFTER of them in a row lock it for `ECAF_SIGN_IN_LOCK_MINUTES`, after
which it unlocks itself (or an administrator unlocks it sooner), and the user is emailed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, metrics, policy
from app.accounts import passwords, recovery, throttle, totp
from app.clock import now
from app.config import Config
from app.models import User

FREE_ATTEMPTS = throttle.FREE_ATTEMPTS
FREE_ATTEMPTS_PER_ADDRESS = throttle.FREE_ATTEMPTS_PER_ADDRESS
MAX_DELAY_SECONDS = throttle.MAX_DELAY_SECONDS
LOCK_AFTER = throttle.LOCK_AFTER  # second-factor failures; wrong passwords never lock
WRONG_DETAILS = ("Enter a correct username and password. If you have forgotten them, or your account is "
                 "locked, contact the eCAF administrator.")
WRONG_CODE = "Enter the 6-digit code shown in your authenticator app now"
WRONG_RECOVERY_CODE = "Enter one of your recovery codes that has not been used"
LOCKED = ("Too many wrong codes: your account is locked for {minutes} minutes and we have emailed you. "
          "If you did not try to sign in, contact the eCAF administrator today: someone knows your password.")


@dataclass
class Outcome:
    user: User | None = None
    message: str | None = None
    # Emails queued by this attempt (an account locked): deliver them once the transaction commits.
    queued: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.user is not None and self.message is None


delay_for = throttle.delay_for


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


def check_password(session: Session, username: str, password: str, address: str | None,
                   config: Config | None = None) -> Outcome:
    """First factor. The wait comes from counters any username text has, and the password is hashed
    against the account's hash or a dummy one, so nothing here depends on whether the account exists.
    A locked or disabled account fails exactly like a wrong password."""
    counters = throttle.PasswordCounters(session, throttle.name_secret(config), username, address)
    wait = counters.wait()
    if wait:
        audit.record(session, "sign_in_delayed", stage="password", wait=wait, address=address)
        metrics.sign_in_throttled(counters.waiting_on())
        return Outcome(message=throttle.wait_message(wait))
    user = find_user(session, username)
    right = passwords.verify_password(user.password_hash if user else None, password[:passwords.MAX_LENGTH * 4])
    if right:
        throttle.lift_expired_lock(session, user, config)
    if not right or not may_sign_in(user):
        counters.failed()
        audit.record(session, "sign_in_failed", actor_id=user.id if user else None, stage="password",
                     address=address)
        metrics.sign_in_failed("password")
        return Outcome(message=WRONG_DETAILS)
    refusal = vetting_refusal(session, user, address)
    if refusal:
        return refusal
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return Outcome(user=user)


def check_second_factor(session: Session, config: Config | None, user: User, address: str | None, stage: str,
                        accept, wrong: str) -> Outcome:
    """A second factor after a proven password: `accept()` says whether the code, recovery code or passkey
    assertion is right. Waits, counts and locks the same way for each (a passkey page may call this, or
    throttle.second_factor_wait / second_factor_failed / second_factor_succeeded itself)."""
    throttle.lift_expired_lock(session, user, config)
    if user.locked_at is not None:
        metrics.sign_in_throttled("lock")
        return Outcome(message=LOCKED.format(minutes=throttle.lock_minutes(config)))
    wait = throttle.second_factor_wait(user)
    if wait:
        audit.record(session, "sign_in_delayed", actor_id=user.id, stage=stage, wait=wait, address=address)
        metrics.sign_in_throttled("account")
        return Outcome(message=throttle.wait_message(wait))
    if not may_sign_in(user) or not accept():
        queued = throttle.second_factor_failed(session, user, config=config, stage=stage, address=address)
        if user.locked_at is not None:
            return Outcome(message=LOCKED.format(minutes=throttle.lock_minutes(config)),
                           queued=[queued] if queued else [])
        return Outcome(message=wrong)
    refusal = vetting_refusal(session, user, address)
    if refusal:
        return refusal
    throttle.second_factor_succeeded(session, user, config=config, address=address)
    return Outcome(user=user)


def check_code(session: Session, config: Config, user: User, code: str, address: str | None) -> Outcome:
    """Second factor: a TOTP code not used before."""
    return check_second_factor(session, config, user, address, "code",
                               lambda: totp.accept_code(session, config, user, code), WRONG_CODE)


def check_recovery_code(session: Session, user: User, code: str, address: str | None,
                        config: Config | None = None) -> Outcome:
    outcome = check_second_factor(session, config, user, address, "recovery_code",
                                  lambda: recovery.use(session, user, code), WRONG_RECOVERY_CODE)
    if outcome.ok:
        audit.record(session, "recovery_code_used", actor_id=user.id, remaining=recovery.remaining(session, user))
    return outcome


def unlock(session: Session, user: User, actor_id: int | None, reason: str) -> None:
    user.locked_at = None
    user.failed_sign_ins = 0
    user.last_failed_at = None
    audit.record(session, "account_unlocked", actor_id=actor_id, user_id=user.id, reason=reason)
