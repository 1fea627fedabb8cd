"""Recovery codes: ten single-use codes for when the authenticator is lost, stored hashed."""
from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.clock import now
from app.models import RecoveryCode, User

COUNT = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
# Each code carries 16 characters of a 31-letter alphabet (79 bits), so a lighter argon2id suffices.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def issue(session: Session, user: User) -> list[str]:
    """Replace the user's codes with ten new ones; the caller shows them once and never stores them."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_code() for _ in range(COUNT)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_hasher.hash(normalise(c)), created_at=now())
                    for c in codes)
    return codes


def use(session: Session, user: User, code: str) -> bool:
    """Spend a code: True once, then never again."""
    candidate = normalise(code)
    if len(candidate) != 16:
        return False
    unused = session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                        RecoveryCode.used_at.is_(None))
                             .with_for_update()).all()
    for row in unused:
        try:
            _hasher.verify(row.code_hash, candidate)
        except VerificationError:
            continue
        row.used_at = now()
        return True
    return False


def remaining(session: Session, user: User) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id,
                                                             RecoveryCode.used_at.is_(None))).all())
