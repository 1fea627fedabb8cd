"""Settings, read from the environment once when the app or a worker starts."""
from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'ecaf.db'}"


# Known to everyone who reads the source: audit links made with it prove nothing outside development.
DEVELOPMENT_AUDIT_KEY = b"ecaf-development-audit-key-not-for-deployment"
MIN_KEY_BYTES = 32
# The Flask secret when none is set: public, so it is refused outside tests and a local run.
DEVELOPMENT_SECRET_KEY = "development-only-secret"
# The tests' TOTP key, SHA-256 of "ecaf-development-totp-key-not-for-deployment" (a local run generates its
# own, app/keys.py): public, so refused in a deployment.
DEVELOPMENT_TOTP_KEY = "uKO4MI9DUxMXTv2Zql032SiObT_QdjK0YARUvGL2dvM="
_warned: set[str] = set()


def _json_setting(env, name: str) -> dict:
    """A setting holding a JSON object; a malformed one stops the start, naming it."""
    import json

    text = env.get(name) or ""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{name} is not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{name} must be a JSON object of text values")
    return value


class AuditKeyMissing(RuntimeError):
    """This deployment holds no usable audit key (ECAF_AUDIT_KEY)."""


class SecretsMissing(RuntimeError):
    """This deployment holds no usable SECRET_KEY or ECAF_TOTP_KEY: it must not start."""


class ChannelsMisconfigured(RuntimeError):
    """The settings of a message channel (NOTIFY_*, ECAF_CHANNEL_*) cannot work: do not start."""


@dataclass
class Config:
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str | None = None
    secret_key: str = DEVELOPMENT_SECRET_KEY  # read through session_secret_key()
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
    # PostgreSQL: the longest a step waits for a row another transaction holds, and the longest a statement
    # runs, before it fails and is retried (0: no limit). Migrations and `ecaf audit verify` have none.
    db_lock_timeout_seconds: float = 10.0
    db_statement_timeout_seconds: float = 120.0
    # How often each worker (or the in-process runner) looks in the database for due timers.
    timer_poll_seconds: float = 5.0
    # Longest wait between two tries of an undelivered message: after an outage they go out within it.
    outbox_max_backoff_seconds: int = 30
    # Connect and read timeouts of every SMTP, HTTP and Notify call, so a hanging channel holds nobody.
    channel_connect_timeout_seconds: float = 5.0
    channel_read_timeout_seconds: float = 15.0
    # GOV.UK Notify: email goes through Notify when the API key is set (before SMTP and the mailbox).
    notify_api_key: str | None = field(default=None, repr=False)
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    # Notify template ids: one for every email (its personalisation is `subject` and `body`), and
    # optionally one per message kind (NOTIFY_TEMPLATES, JSON {"kind": "template id"}).
    notify_email_template_id: str | None = None
    notify_templates: dict = field(default_factory=dict)
    # Trusted reverse proxies in front of the web app (X-Forwarded-For/-Proto/-Host hops): 0 trusts none.
    proxy_hops: int = 0
    # /metrics answers loopback, or a request bearing this token (Authorization: Bearer ...).
    metrics_token: str | None = field(default=None, repr=False)
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
    # Password change, authenticator reset, account administration and passkey registration ask the
    # user to sign in again when the session's sign-in is older than this.
    fresh_sign_in_minutes: int = 15
    # Wrong codes (or passkeys) after a right password lock the account for this long (it unlocks itself).
    sign_in_lock_minutes: int = 30
    # Session cookies are Secure (HTTPS only) except on the local development server.
    cookie_secure: bool = True
    # Fernet keys for TOTP secrets at rest (ECAF_TOTP_KEY), newest first: read through totp_keys().
    totp_key: str | None = field(default=None, repr=False)
    # Where a local run keeps the keys it generates when SECRET_KEY / ECAF_TOTP_KEY are not set.
    dev_keys_file: Path = PROJECT_ROOT / "instance" / "dev-keys.json"
    # Uploaded evidence: files live here, outside the database, named by random keys.
    attachments_dir: Path = PROJECT_ROOT / "instance" / "attachments"
    attachment_max_bytes: int = 10 * 1024 * 1024
    # Keys the audit trail's links and checkpoints (ECAF_AUDIT_KEY): never stored in the database.
    audit_key: str | None = field(default=None, repr=False)
    # Where signed checkpoints of the audit trail's head go, outside the database, and how often.
    audit_checkpoint_dir: Path | None = None
    audit_checkpoint_url: str | None = None
    audit_checkpoint_interval_seconds: int = 300
    # Signs transfer files (ECAF_TRANSFER_KEY): never stored in the database. See transfer_signing_key.
    transfer_key: str | None = None
    # Set by `ecaf run` on this machine only: a local run may fall back to development keys.
    local_run: bool = False
    # Passkeys: the relying party id (a host name) and the origin of the pages (ECAF_RP_ID, ECAF_ORIGIN).
    # Unset: the requested host on a local run or in tests; otherwise no passkeys are offered.
    rp_id: str | None = None
    origin: str | None = None
    # The JSON API: calls a client system may make, and credentials an address may get wrong, in a moving
    # window (README, "JSON API"); over either the call is refused with 429 and Retry-After.
    api_rate_limit: str = "120/minute"
    api_failed_credentials_limit: str = "20/minute"

    @classmethod
    def from_env(cls, **overrides) -> "Config":
        env = os.environ
        values = dict(
            database_url=env.get("DATABASE_URL") or _default_database_url(),
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY", ""),
            processes_dir=Path(env.get("ECAF_PROCESSES_DIR", PROJECT_ROOT / "processes")),
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=int(env.get("SMTP_PORT", "25")),
            mail_from=env.get("MAIL_FROM", cls.mail_from),
            index_endpoint_url=env.get("INDEX_ENDPOINT_URL") or None,
            admin_email=env.get("ECAF_ADMIN_EMAIL", cls.admin_email),
            sweep_interval_seconds=int(env.get("ECAF_SWEEP_INTERVAL", "60")),
            timer_poll_seconds=float(env.get("ECAF_TIMER_POLL", "5")),
            db_lock_timeout_seconds=float(env.get("ECAF_DB_LOCK_TIMEOUT", "10")),
            db_statement_timeout_seconds=float(env.get("ECAF_DB_STATEMENT_TIMEOUT", "120")),
            outbox_max_backoff_seconds=int(env.get("ECAF_OUTBOX_MAX_BACKOFF", "30")),
            channel_connect_timeout_seconds=float(env.get("ECAF_CHANNEL_CONNECT_TIMEOUT", "5")),
            channel_read_timeout_seconds=float(env.get("ECAF_CHANNEL_READ_TIMEOUT", "15")),
            notify_api_key=env.get("NOTIFY_API_KEY") or None,
            notify_base_url=env.get("NOTIFY_BASE_URL") or cls.notify_base_url,
            notify_email_template_id=env.get("NOTIFY_EMAIL_TEMPLATE_ID") or None,
            notify_templates=_json_setting(env, "NOTIFY_TEMPLATES"),
            proxy_hops=int(env.get("ECAF_PROXY_HOPS", "0")),
            metrics_token=env.get("ECAF_METRICS_TOKEN") or None,
            support_email=env.get("ECAF_SUPPORT_EMAIL", cls.support_email),
            support_phone=env.get("ECAF_SUPPORT_PHONE", cls.support_phone),
            safeguarding_phone=env.get("ECAF_SAFEGUARDING_PHONE", cls.safeguarding_phone),
            idle_timeout_minutes=int(env.get("ECAF_IDLE_TIMEOUT_MINUTES", "30")),
            stuck_after_days=int(env.get("ECAF_STUCK_AFTER_DAYS", "14")),
            absolute_timeout_hours=int(env.get("ECAF_ABSOLUTE_TIMEOUT_HOURS", "12")),
            fresh_sign_in_minutes=int(env.get("ECAF_FRESH_SIGN_IN_MINUTES", "15")),
            sign_in_lock_minutes=int(env.get("ECAF_SIGN_IN_LOCK_MINUTES", "30")),
            cookie_secure=env.get("ECAF_COOKIE_SECURE", "true").lower() not in ("0", "false", "no"),
            totp_key=env.get("ECAF_TOTP_KEY") or None,
            dev_keys_file=Path(env.get("ECAF_DEV_KEYS_FILE") or PROJECT_ROOT / "instance" / "dev-keys.json"),
            attachments_dir=Path(env.get("ECAF_ATTACHMENTS_DIR") or PROJECT_ROOT / "instance" / "attachments"),
            attachment_max_bytes=int(env.get("ECAF_ATTACHMENT_MAX_MB", "10")) * 1024 * 1024,
            audit_key=env.get("ECAF_AUDIT_KEY") or None,
            audit_checkpoint_dir=Path(env["ECAF_AUDIT_CHECKPOINT_DIR"]) if env.get("ECAF_AUDIT_CHECKPOINT_DIR") else None,
            audit_checkpoint_url=env.get("ECAF_AUDIT_CHECKPOINT_URL") or None,
            audit_checkpoint_interval_seconds=int(env.get("ECAF_AUDIT_CHECKPOINT_INTERVAL", "300")),
            transfer_key=env.get("ECAF_TRANSFER_KEY") or None,
            rp_id=env.get("ECAF_RP_ID") or None,
            origin=env.get("ECAF_ORIGIN") or None,
            api_rate_limit=env.get("ECAF_API_RATE_LIMIT") or cls.api_rate_limit,
            api_failed_credentials_limit=env.get("ECAF_API_FAILED_CREDENTIALS_LIMIT") or cls.api_failed_credentials_limit,
        )
        values.update(overrides)
        return cls(**values)

    def development_keys_allowed(self) -> bool:
        """The one rule for falling back to a development key: tests, `ecaf run` on this machine, and
        the local development database that `make run` uses (DATABASE_URL unset). Never a deployment."""
        return self.testing or self.local_run or self.database_url == _default_database_url()

    def session_secret_key(self) -> str:
        """Flask's SECRET_KEY. Outside development_keys_allowed an unset, public default or short one is
        refused; a local run without one uses the key it generated in dev_keys_file."""
        key = (self.secret_key or "").strip()
        if key and key != DEVELOPMENT_SECRET_KEY and len(key.encode()) >= MIN_KEY_BYTES:
            return self.secret_key
        if self.development_keys_allowed():
            if key and key != DEVELOPMENT_SECRET_KEY:
                return self.secret_key
            return DEVELOPMENT_SECRET_KEY if self.testing else self._development_keys()["SECRET_KEY"]
        make = "python -c 'import secrets; print(secrets.token_hex(32))'"
        if not key:
            raise SecretsMissing(f"SECRET_KEY is not set: eCAF will not start without its own secret key ({make})")
        if key == DEVELOPMENT_SECRET_KEY:
            raise SecretsMissing("SECRET_KEY is the public development default, which anyone can read in the "
                                 f"source: set a secret one ({make})")
        raise SecretsMissing(f"SECRET_KEY is too short ({len(key.encode())} bytes): use at least {MIN_KEY_BYTES} "
                             f"random characters ({make})")

    def totp_keys(self) -> list[str]:
        """The Fernet keys of TOTP secrets (ECAF_TOTP_KEY, comma-separated, newest first): the first
        encrypts, all decrypt. Never derived from SECRET_KEY; required outside development_keys_allowed."""
        from app import keys

        if self.totp_key:
            try:
                found = keys.fernet_keys(self.totp_key)
            except ValueError as exc:
                raise SecretsMissing(f"ECAF_TOTP_KEY is not usable: {exc}") from None
            if DEVELOPMENT_TOTP_KEY in found and not self.development_keys_allowed():
                raise SecretsMissing("ECAF_TOTP_KEY holds the development key, which anyone can read in the source")
            return found
        if self.development_keys_allowed():
            return [DEVELOPMENT_TOTP_KEY] if self.testing else [self._development_keys()["ECAF_TOTP_KEY"]]
        raise SecretsMissing("ECAF_TOTP_KEY is not set: every authenticator secret is encrypted with it, and it is "
                             f"never derived from SECRET_KEY (make one with {keys.GENERATE_HINT})")

    def legacy_totp_keys(self) -> list[str]:
        """Keys releases before ECAF_TOTP_KEY derived from SECRET_KEY: they decrypt, last, the secrets those
        releases sealed, until `ecaf keys rotate-totp` re-encrypts them. Never used to encrypt."""
        from app import keys

        found = [keys.derived_totp_key(self.secret_key)] if (self.secret_key or "").strip() else []
        if self.development_keys_allowed():  # a local database made before: the public default's key
            found.append(keys.derived_totp_key(DEVELOPMENT_SECRET_KEY))
        return list(dict.fromkeys(found))

    def check_secrets(self) -> None:
        """Raises SecretsMissing, saying why, unless SECRET_KEY and ECAF_TOTP_KEY are usable here."""
        self.session_secret_key()
        self.totp_keys()

    def check_channels(self) -> None:
        """Raises ChannelsMisconfigured, saying why, when the message channels' settings would keep every
        message from going out (a Notify key without a template id, or not shaped like a key)."""
        from app.jobs.channels import configuration_problems

        problems = configuration_problems(self)
        if problems:
            raise ChannelsMisconfigured("; ".join(problems))

    def _development_keys(self) -> dict[str, str]:
        from app import keys

        try:
            return keys.development_keys(self.dev_keys_file)
        except (OSError, ValueError) as exc:
            raise SecretsMissing(f"cannot use the development key file: {exc}") from None

    def audit_signing_key(self) -> bytes:
        """The HMAC-SHA256 key of the audit trail's links and checkpoints."""
        if self.audit_key:
            key = self.audit_key.strip().encode("utf-8")
            if len(key) < MIN_KEY_BYTES:
                raise AuditKeyMissing(f"ECAF_AUDIT_KEY is too short: use at least {MIN_KEY_BYTES} random "
                                      "characters (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
            if hmac.compare_digest(key, DEVELOPMENT_AUDIT_KEY) and not self.development_keys_allowed():
                raise AuditKeyMissing("ECAF_AUDIT_KEY is the development key, which anyone can read in the source")
            return key
        if self.development_keys_allowed():
            if "audit" not in _warned:
                _warned.add("audit")
                logging.getLogger(__name__).warning(
                    "ECAF_AUDIT_KEY is not set: the audit trail is linked with the development key, which anyone "
                    "can read in the source. Set ECAF_AUDIT_KEY before eCAF holds real records.")
            return DEVELOPMENT_AUDIT_KEY
        raise AuditKeyMissing("ECAF_AUDIT_KEY is not set: eCAF cannot seal or check its audit trail without it")

    def transfer_signing_key(self) -> bytes:
        """The HMAC-SHA256 key transfer files are signed and checked with (ECAF_TRANSFER_KEY). The
        development key only where development_keys_allowed says so; a deployment never accepts it."""
        if self.transfer_key:
            key = self.transfer_key.strip().encode("utf-8")
            if len(key) < MIN_KEY_BYTES:
                raise TransferKeyMissing(f"ECAF_TRANSFER_KEY is too short: use at least {MIN_KEY_BYTES} random "
                                         "characters")
            if hmac.compare_digest(key, DEVELOPMENT_TRANSFER_KEY) and not self.development_keys_allowed():
                raise TransferKeyMissing("ECAF_TRANSFER_KEY is the development key, which anyone can read in the "
                                         "source")
            return key
        if self.development_keys_allowed():
            return DEVELOPMENT_TRANSFER_KEY
        raise TransferKeyMissing("ECAF_TRANSFER_KEY is not set: this eCAF cannot sign or check transfer files")


# Known to everyone who reads the source, so a file it signs proves nothing outside tests and a local run.
DEVELOPMENT_TRANSFER_KEY = b"ecaf-development-transfer-key-not-for-deployment"


class TransferKeyMissing(RuntimeError):
    """The deployment holds no usable transfer key."""
