"""Passkeys (WebAuthn credentials), the challenges issued for them, and where an authority requires them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONType, UTCDateTime


class Passkey(Base):
    """One registered passkey: its credential id and public key, never a secret."""

    __tablename__ = "passkey"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    # base64url of the authenticator's credential id; unique across every user.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list] = mapped_column(JSONType, default=list)
    name: Mapped[str] = mapped_column(String(100))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backed_up: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasskeyChallenge(Base):
    """A challenge handed to the browser: bound to one session and purpose, used once, short-lived.

    The id is the SHA-256 of the challenge; the row is deleted when the answer is checked."""

    __tablename__ = "passkey_challenge"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    web_session_id: Mapped[str] = mapped_column(ForeignKey("web_session.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))  # register or sign_in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PasskeyRequirement(Base):
    """An authority requires passkeys of one role: its users without one register one at sign-in."""

    __tablename__ = "passkey_requirement"
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
