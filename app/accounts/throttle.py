"""Counters that slow guessing down without letting anyone lock an account they cannot sign in to.

- `allow`: a fixed-window counter per key (e.g. "apply:<address>") for public forms needing no account.
- Password failures are counted per username *text* (an HMAC of the normalised text, so a name that
  matches no account has a counter exactly like one that does) and per client address. The wait is
  computed from those counters alone, never from the account, so the answer ("wait N seconds" or
  "wrong details") is the same whether or not the account exists. A password failure never locks.
- Second-factor failures (codes, recovery codes, passkeys) are counted on the account, because only
  someone who proved the password reaches them: growing delays, then after LOCK_AFTER a lock that
  lifts itself after `ECAF_SIGN_IN_LOCK_MINUTES` (or at an administrator's unlock) and emails the user.

Every counter forgets after FORGET_AFTER without a failure. All rows share the sign-in throttle table.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from app import audit, metrics, outbox
from app.clock import as_utc, now
from app.models import SignInThrottle, User

FREE_ATTEMPTS = 3
# An office shares one address: it gets more free attempts before everyone there is slowed down.
FREE_ATTEMPTS_PER_ADDRESS = 20
MAX_DELAY_SECONDS = 300
FORGET_AFTER = timedelta(hours=1)
LOCK_AFTER = 10  # second-factor failures in a row (after a proven password)
DEFAULT_LOCK_MINUTES = 30


def allow(session: Session, key: str, *, limit: int, window: timedelta) -> bool:
    """Count one more use of `key`; False once it has been used `limit` times in the current window."""
    row = session.get(SignInThrottle, key[:100], with_for_update=True)
    moment = now()
    if row is None:
        session.add(SignInThrottle(key=key[:100], failures=1, last_failure_at=moment))
        return True
    if as_utc(row.last_failure_at) + window <= moment:
        row.failures, row.last_failure_at = 1, moment
        return True
    if row.failures >= limit:
        return False
    row.failures += 1
    return True


def delay_for(failures: int, free: int = FREE_ATTEMPTS) -> int:
    """Seconds the next attempt must wait after this many consecutive failures: none for the first
    `free`, then 2, 4, 8 ... up to MAX_DELAY_SECONDS."""
    if failures < free:
        return 0
    return min(2 ** min(failures - free + 1, 16), MAX_DELAY_SECONDS)


def wait_seconds(failures: int, last_failure_at, free: int = FREE_ATTEMPTS) -> int:
    """Whole seconds still to wait (rounded up), 0 when the next attempt may go ahead."""
    if not failures or last_failure_at is None:
        return 0
    ready_at = as_utc(last_failure_at) + timedelta(seconds=delay_for(failures, free))
    return max(0, int((ready_at - now()).total_seconds() + 0.999))


def wait_message(seconds: int) -> str:
    return f"Too many attempts. Wait {seconds} seconds, then try again."


def normalised(username: str) -> str:
    return username.strip().lower()[:254]


def name_secret(config) -> str:
    """The key of the username-text counters: the app's secret key."""
    if config is None:
        from app.config import Config

        return Config.secret_key
    getter = getattr(config, "session_secret_key", None)
    return getter() if callable(getter) else config.secret_key


def name_key(secret: str, username: str) -> str:
    """The counter of a username text, whether or not any account has it. Keyed, so the table never
    holds what was typed (people type passwords into the username box) in a form one can guess back."""
    digest = hmac.new(secret.encode(), b"sign-in-name\0" + normalised(username).encode(), hashlib.sha256)
    return f"name:{digest.hexdigest()}"


def address_key(address: str) -> str:
    return f"addr:{address}"


class PasswordCounters:
    """The counters of one password attempt, locked (in key order) until the transaction ends, so
    parallel guesses at one name or from one address wait for each other instead of all going ahead."""

    def __init__(self, session: Session, secret: str, username: str, address: str | None):
        frees = {name_key(secret, username): FREE_ATTEMPTS}
        if address:
            frees[address_key(address)] = FREE_ATTEMPTS_PER_ADDRESS
        self.rows = [(row, frees[row.key]) for row in _locked_rows(session, list(frees))]

    def wait(self) -> int:
        return max([0] + [wait_seconds(row.failures, row.last_failure_at, free) for row, free in self.rows])

    def waiting_on(self) -> str:
        """Which counter makes this attempt wait longest: "name" or "address" (for the figures)."""
        row, _ = max(self.rows, key=lambda pair: wait_seconds(pair[0].failures, pair[0].last_failure_at, pair[1]))
        return "address" if row.key.startswith("addr:") else "name"

    def failed(self) -> None:
        moment = now()
        for row, _ in self.rows:
            row.failures, row.last_failure_at = row.failures + 1, moment


def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(SignInThrottle)


def _locked_rows(session: Session, keys: list[str]) -> list[SignInThrottle]:
    """A row for every key (made at zero when new, however many callers race), locked, stale counts forgotten."""
    moment = now()
    session.execute(_insert(session).values([{"key": key, "failures": 0, "last_failure_at": moment}
                                             for key in keys]).on_conflict_do_nothing(index_elements=["key"]))
    rows = session.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys)).order_by(SignInThrottle.key)
                           .with_for_update().execution_options(populate_existing=True)).all()
    for row in rows:
        if row.failures and as_utc(row.last_failure_at) + FORGET_AFTER <= moment:
            row.failures = 0
    return rows


def forget_names(session: Session, secret: str, user: User, address: str | None) -> None:
    """A full sign-in: the counters of the account's own username and email texts and of the address start afresh."""
    keys = [name_key(secret, user.username), name_key(secret, user.email)] + ([address_key(address)] if address else [])
    session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(keys)))


def purge_stale(session: Session) -> int:
    """Drop password counters nobody has added to for FORGET_AFTER (they count as zero anyway)."""
    result = session.execute(delete(SignInThrottle).where(
        or_(SignInThrottle.key.like("name:%"), SignInThrottle.key.like("addr:%")),
        SignInThrottle.last_failure_at <= now() - FORGET_AFTER))
    return result.rowcount


# --- the second factor: counted on the account, and the only thing that locks it ---------------------

def lock_minutes(config) -> int:
    return getattr(config, "sign_in_lock_minutes", None) or DEFAULT_LOCK_MINUTES


def second_factor_wait(user: User) -> int:
    """Seconds before this account may try another code, recovery code or passkey."""
    return wait_seconds(user.failed_sign_ins or 0, user.last_failed_at)


def second_factor_failed(session: Session, user: User, *, config, stage: str = "passkey",
                         address: str | None = None) -> int | None:
    """A wrong code, recovery code or passkey assertion after a proven password. Counts towards the
    lock; returns the id of the email queued when this failure locks the account (deliver it after commit)."""
    user.failed_sign_ins = (user.failed_sign_ins or 0) + 1
    user.last_failed_at = now()
    audit.record(session, "sign_in_failed", actor_id=user.id, stage=stage, address=address)
    metrics.sign_in_failed(stage)
    if user.failed_sign_ins >= LOCK_AFTER and user.locked_at is None:
        return _lock(session, user, lock_minutes(config), address)
    return None


def second_factor_succeeded(session: Session, user: User, *, config, address: str | None = None) -> None:
    """Both factors given: every counter that concerns this account starts afresh."""
    user.failed_sign_ins = 0
    user.last_failed_at = None
    forget_names(session, name_secret(config), user, address)


def _lock(session: Session, user: User, minutes: int, address: str | None) -> int:
    user.locked_at = now()
    until = user.locked_at + timedelta(minutes=minutes)
    audit.record(session, "account_locked", actor_id=user.id, failures=user.failed_sign_ins,
                 until=until.isoformat(), address=address)
    authority = user.authority
    contact = ", ".join(p for p in (authority.admin_phone if authority else None,
                                    authority.admin_email if authority else None) if p)
    body = (f"Dear {user.full_name},\n\n"
            f"Your password for eCAF was entered correctly, then a wrong code or passkey was given "
            f"{user.failed_sign_ins} times in a row, so your account is locked until "
            f"{until:%H:%M} UTC on {until:%d %B %Y} ({minutes} minutes). It unlocks itself then, or "
            f"sooner if the eCAF administrator unlocks it.\n\n"
            f"If this was not you, someone knows your password: contact the eCAF administrator"
            f"{f' ({contact})' if contact else ''} today so that it can be changed.\n")
    message = outbox.queue_email(session, kind="account_locked", recipient=user.email,
                                 subject="Your eCAF account is locked for a while", body=body,
                                 key=f"account-locked:{user.id}:{user.locked_at.isoformat()}")
    return message.id


def lift_expired_lock(session: Session, user: User | None, config) -> bool:
    """The lock's time is up: the account may be used again (its failure count stays, so the next
    wrong code locks it again at once). Audited; False when there was nothing to lift."""
    if user is None or user.locked_at is None:
        return False
    if as_utc(user.locked_at) + timedelta(minutes=lock_minutes(config)) > now():
        return False
    locked_at, user.locked_at = user.locked_at, None
    audit.record(session, "account_lock_expired", actor_id=None, user_id=user.id,
                 locked_at=as_utc(locked_at).isoformat())
    return True


def lift_expired_locks(session: Session, config) -> int:
    """The sweep's part: lift every lock whose time is up, so the account is usable everywhere again."""
    cutoff = now() - timedelta(minutes=lock_minutes(config))
    users = session.scalars(select(User).where(User.locked_at.is_not(None), User.locked_at <= cutoff)).all()
    return sum(lift_expired_lock(session, user, config) for user in users)
