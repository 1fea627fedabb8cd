"""Passwords: argon2id hashes, and the rules a new password must meet (length and a blocklist)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128
_hasher = PasswordHasher()  # argon2id, t=3, 64 MiB, p=4: RFC 9106's low-memory profile
# Checked when the username is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _blocklist() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip().lower() for line in path.read_text().splitlines()
                     if line.strip() and not line.startswith("#"))


def password_problem(password: str, *, context_words: tuple[str, ...] = ()) -> str | None:
    """Why this password may not be used, or None. No composition rules: length and guessability only."""
    if len(password) < MIN_LENGTH:
        return f"Your password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"Your password must be {MAX_LENGTH} characters or fewer"
    lowered = password.lower()
    if lowered in _blocklist() or len(set(lowered)) <= 3:
        return "This password is too common: choose a longer phrase that is not easy to guess"
    for word in ("ecaf", "common assessment", *context_words):
        word = (word or "").lower().strip()
        if len(word) >= 4 and word in lowered:
            return "Your password must not contain your name, your username or the name of the service"
    return None
