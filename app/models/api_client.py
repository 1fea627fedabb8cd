"""Client systems (a council's case system, a health system) that call the JSON API for an authority."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime
from .people import Authority, User

API_SCOPES = ("index:read", "index:notify", "transfers", "reports:read")


class ApiClient(Base):
    __tablename__ = "api_client"
    __table_args__ = (Index("ix_api_client_authority", "authority_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # Public half of the credentials, random so that it names no authority and cannot be guessed.
    client_id: Mapped[str] = mapped_column(String(40), unique=True)
    # SHA-256 of a 256-bit random secret: nothing to brute-force, and checked on every call (see services).
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    authority: Mapped[Authority] = relationship()
    # Space-separated, from API_SCOPES.
    scope_list: Mapped[str] = mapped_column("scopes", String(200))
    expires_on: Mapped[date] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope_list.split())

    def status(self, today: date) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_on < today else "active"


class ApiToken(Base):
    """A short-lived access token issued to a client by the OAuth 2 client-credentials grant."""
    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the token, as for the client's secret: the table never holds a usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id", ondelete="CASCADE"), index=True)
    client: Mapped[ApiClient] = relationship()
    # Space-separated: what the client asked for, within its own scopes.
    scope_list: Mapped[str] = mapped_column("scopes", String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope_list.split())
