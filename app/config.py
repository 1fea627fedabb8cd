"""Settings, read from the environment once when the app or a worker starts."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'ecaf.db'}"


@dataclass
class Config:
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str | None = None
    secret_key: str = "development-only-secret"
    processes_dir: Path = PROJECT_ROOT / "processes"
    # Notifications: a local mailbox table unless an SMTP host is configured.
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "ecaf@localhost"
    # The national index: our own table always; an external endpoint when configured.
    index_endpoint_url: str | None = None
    # Who hears about overdue and escalated episodes when no authority address is known.
    admin_email: str = "ecaf-admin@localhost"
    # How often the safety-net sweep looks for due timers and undelivered messages.
    sweep_interval_seconds: int = 60
    outbox_max_attempts: int = 6
    queue_name: str = "ecaf"
    testing: bool = False
    # Support contacts in every page's footer, unless the user's authority has its own.
    support_email: str = "ecaf-admin@localhost"
    support_phone: str = "0300 000 0000"
    safeguarding_phone: str = "0300 000 0999"
    # Sessions end after this long without a request, and this long after sign-in at the latest.
    idle_timeout_minutes: int = 30
    # An open episode waiting on a person with no step for this many days counts as stuck.
    stuck_after_days: int = 14
    absolute_timeout_hours: int = 12
    # Session cookies are Secure (HTTPS only) except on the local development server.
    cookie_secure: bool = True
    # Key for TOTP secrets at rest; derived from SECRET_KEY when not set.
    totp_key: str | None = None
    # Uploaded evidence: files live here, outside the database, named by random keys.
    attachments_dir: Path = PROJECT_ROOT / "instance" / "attachments"
    attachment_max_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_env(cls, **overrides) -> "Config":
        env = os.environ
        values = dict(
            database_url=env.get("DATABASE_URL") or _default_database_url(),
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY", cls.secret_key),
            processes_dir=Path(env.get("ECAF_PROCESSES_DIR", PROJECT_ROOT / "processes")),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=int(env.get("SMTP_PORT", "25")),
            mail_from=env.get("MAIL_FROM", cls.mail_from),
            index_endpoint_url=env.get("INDEX_ENDPOINT_URL") or None,
            admin_email=env.get("ECAF_ADMIN_EMAIL", cls.admin_email),
            sweep_interval_seconds=int(env.get("ECAF_SWEEP_INTERVAL", "60")),
            support_email=env.get("ECAF_SUPPORT_EMAIL", cls.support_email),
            support_phone=env.get("ECAF_SUPPORT_PHONE", cls.support_phone),
            safeguarding_phone=env.get("ECAF_SAFEGUARDING_PHONE", cls.safeguarding_phone),
            idle_timeout_minutes=int(env.get("ECAF_IDLE_TIMEOUT_MINUTES", "30")),
            stuck_after_days=int(env.get("ECAF_STUCK_AFTER_DAYS", "14")),
            absolute_timeout_hours=int(env.get("ECAF_ABSOLUTE_TIMEOUT_HOURS", "12")),
            cookie_secure=env.get("ECAF_COOKIE_SECURE", "true").lower() not in ("0", "false", "no"),
            totp_key=env.get("ECAF_TOTP_KEY") or None,
            attachments_dir=Path(env.get("ECAF_ATTACHMENTS_DIR") or PROJECT_ROOT / "instance" / "attachments"),
            attachment_max_bytes=int(env.get("ECAF_ATTACHMENT_MAX_MB", "10")) * 1024 * 1024,
        )
        values.update(overrides)
        return cls(**values)
