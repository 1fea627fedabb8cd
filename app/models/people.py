"""Local authorities, organisations and the people who use eCAF."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime

ROLES = ("practitioner", "administrator", "process_owner", "service_team")
ORGANISATION_KINDS = {
    "school": "School or college",
    "gp_practice": "GP practice",
    "health_visiting": "Health visiting and school nursing",
    "police": "Police",
    "voluntary_sector": "Voluntary sector",
    "council_service": "Council services",
}
VETTING_TYPES = {"enhanced_dbs": "Enhanced DBS check", "standard_dbs": "Standard DBS check",
                 "npp_v": "NPPV (police vetting)"}


class Authority(Base):
    """A local authority: owns the CAFs of children who live in its area."""

    __tablename__ = "authority"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    admin_email: Mapped[str | None] = mapped_column(String(254))
    admin_phone: Mapped[str | None] = mapped_column(String(40))
    safeguarding_phone: Mapped[str | None] = mapped_column(String(40))
    # Contributors (section edits by invited members) are off unless the authority turns them on.
    contributors_enabled: Mapped[bool] = mapped_column(default=False)


class Organisation(Base):
    __tablename__ = "organisation"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))  # school, gp_practice, police, ...
    authority_id: Mapped[int] = mapped_column(ForeignKey("authority.id"))
    authority: Mapped[Authority] = relationship()


class User(Base):
    """One account per person (never shared)."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    job_title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20), default="practitioner")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    organisation: Mapped[Organisation | None] = relationship(foreign_keys=[organisation_id])
    active: Mapped[bool] = mapped_column(default=True)
    created_at = mapped_column(UTCDateTime, nullable=True)

    # Sign-in: an argon2id password hash and a TOTP secret (encrypted), never the secrets themselves.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last accepted TOTP time step: a code is accepted once, so only later steps pass.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_sign_ins: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Vetting: no sign-in until an administrator records a current check and the training date.
    vetting_type: Mapped[str | None] = mapped_column(String(40))
    vetting_reference: Mapped[str | None] = mapped_column(String(100))
    vetting_checked_on: Mapped[date | None] = mapped_column(Date)
    vetting_expires_on: Mapped[date | None] = mapped_column(Date)
    training_completed_on: Mapped[date | None] = mapped_column(Date)
    vetting_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    vetting_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Demo accounts only: `ecaf users totp` may print their current code.
    demo_account: Mapped[bool] = mapped_column(default=False)

    # Flask-Login: a User is only ever loaded for a signed-in session whose account may be used
    # (app.web.access.load_user_from_session_row); signed out is Flask-Login's anonymous user.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    def vetting_problem(self, today: date) -> str | None:
        """Why this account may not be used today, or None when vetting and training are current."""
        if not (self.vetting_type and self.vetting_reference and self.vetting_checked_on):
            return "no vetting check has been recorded"
        if self.training_completed_on is None:
            return "no eCAF training has been recorded"
        if self.vetting_expires_on is not None and self.vetting_expires_on < today:
            return f"the vetting check expired on {self.vetting_expires_on.isoformat()}"
        return None

    @property
    def authority(self) -> Authority | None:
        return self.organisation.authority if self.organisation else None

    def contact(self) -> dict:
        """What the national index and the episode's people list say about this person."""
        return {
            "name": self.full_name,
            "role": self.job_title,
            "organisation": self.organisation.name if self.organisation else None,
            "phone": self.phone,
            "email": self.email,
        }
