"""Time-based one-time codes (RFC 6238): secrets encrypted at rest, each code accepted only once."""
from __future__ import annotations

import base64
import hashlib

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from markupsafe import Markup
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from app.config import Config
from app.models import User

ISSUER = "eCAF"
# The current step or the one before it: 30 s for network delay and typing, as RFC 6238 5.2 allows.
VALID_WINDOW = 1


def _fernet(config: Config) -> Fernet:
    key = config.totp_key or base64.urlsafe_b64encode(
        hashlib.sha256(b"ecaf-totp-secrets:" + config.secret_key.encode()).digest()).decode()
    return Fernet(key)


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits from the system's CSPRNG


def seal(config: Config, secret: str) -> str:
    return _fernet(config).encrypt(secret.encode()).decode()


def unseal(config: Config, sealed: str) -> str | None:
    try:
        return _fernet(config).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


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
