"""Time-based one-time codes (RFC 6238): secrets encrypted at rest, each code accepted only once.

Secrets are sealed with MultiFernet over ECAF_TOTP_KEY (newest key first); `rotate` re-encrypts
every stored secret under the newest key, including those sealed under the key older releases
derived from SECRET_KEY, which otherwise still open (last, with a warning) until then.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from markupsafe import Markup
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.config import Config
from app.models import User

ISSUER = "eCAF"
# The current step or the one before it: 30 s for network delay and typing, as RFC 6238 5.2 allows.
VALID_WINDOW = 1


log = logging.getLogger(__name__)
_warned_legacy = False


def _fernet(config: Config) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in config.totp_keys()])


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits from the system's CSPRNG


def seal(config: Config, secret: str) -> str:
    return _fernet(config).encrypt(secret.encode()).decode()


def unseal(config: Config, sealed: str) -> str | None:
    try:
        return _fernet(config).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        pass
    try:
        secret = MultiFernet([Fernet(key) for key in config.legacy_totp_keys()]).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None
    global _warned_legacy
    if not _warned_legacy:
        _warned_legacy = True
        log.warning("an authenticator secret is still encrypted under the key derived from SECRET_KEY: run "
                    "`ecaf keys rotate-totp` to re-encrypt every secret under ECAF_TOTP_KEY")
    return secret


@dataclass
class Rotation:
    rotated: int = 0  # re-encrypted under the newest key
    current: int = 0  # under the newest key already: left as they were
    unreadable: list[str] = field(default_factory=list)  # usernames whose secret no key opens


def rotate(session: Session, config: Config, old_secret_keys: tuple[str, ...] = ()) -> Rotation:
    """Re-encrypt every stored TOTP secret under the newest ECAF_TOTP_KEY. A secret opens under any
    configured key, the key derived from SECRET_KEY, or one derived from an earlier SECRET_KEY given in
    `old_secret_keys`. Running it again changes nothing."""
    from app import keys

    newest = Fernet(config.totp_keys()[0])
    opening = [*config.totp_keys(), *config.legacy_totp_keys(), *map(keys.derived_totp_key, old_secret_keys)]
    every_key = MultiFernet([Fernet(key) for key in dict.fromkeys(opening)])
    result = Rotation()
    users = session.scalars(select(User).where(User.totp_secret.is_not(None)).order_by(User.id).with_for_update())
    for user in users:
        token = user.totp_secret.encode()
        try:
            newest.decrypt(token)
            result.current += 1
            continue
        except InvalidToken:
            pass
        try:
            user.totp_secret = newest.encrypt(every_key.decrypt(token)).decode()
            result.rotated += 1
        except InvalidToken:
            result.unreadable.append(user.username)
    return result


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_code_svg(secret: str, email: str) -> Markup:
    """An inline SVG QR code: no style attributes, so the strict CSP allows it."""
    svg = segno.make(provisioning_uri(secret, email), error="m").svg_inline(
        scale=5, title="QR code for your authenticator app")
    return Markup(svg)


def matching_step(secret: str, code: str) -> int | None:
    """The time step `code` belongs to (now or one step ago), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(code, valid_window=VALID_WINDOW)
    except pyotp.exceptions.OTPVerificationError:
        return None


def accept_code(session: Session, config: Config, user: User, code: str) -> bool:
    """True once for a right code. The conditional UPDATE makes a replay lose, even in a race."""
    secret = unseal(config, user.totp_secret) if user.totp_secret else None
    step = matching_step(secret, code) if secret else None
    if step is None:
        return False
    result = session.execute(
        update(User).where(User.id == user.id,
                           or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    user.totp_last_step = step
    return True


def current_code(config: Config, user: User) -> str | None:
    secret = unseal(config, user.totp_secret) if user.totp_secret else None
    return pyotp.TOTP(secret).now() if secret else None
