"""eCAF started as a council would run it, on a scratch PostgreSQL database: the schema migrated, a
process version deployed, a few people, then `ecaf serve` and `ecaf worker`s as separate processes,
Redis reached through a proxy the test can cut, mail and index notices going to recording servers."""
from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from app.accounts import totp
from app.clock import now
from app.config import Config
from app.db import normalise_url
from app.jobs.runtime import Runtime
from app.models import Authority, Organisation, User
from tests.conftest import BASE_POSTGRES_URL, VETTED, create_database_beside
from tests.web import give_credentials

from .journey import Child
from .processes import EcafProcess, environment, run_command, wait_for

# The web server: `ecaf serve` (gunicorn), as in production.
SERVE = ["serve"]


@dataclass(frozen=True)
class Keys:
    """Fresh, real-looking keys for this run: none of them is a public default or the tests' own."""
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    totp: str = field(default_factory=lambda: Fernet.generate_key().decode())
    audit: str = field(default_factory=lambda: secrets.token_hex(32))
    transfer: str = field(default_factory=lambda: secrets.token_hex(32))

    def config(self, database_url: str) -> Config:
        return Config(database_url=database_url, secret_key=self.secret, totp_key=self.totp, audit_key=self.audit,
                      transfer_key=self.transfer)


def fresh_database(url: str) -> None:
    """An empty database of that name beside the configured one (a stale one from a crashed run dropped)."""
    drop_database(url)
    create_database_beside(url)


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(normalise_url(BASE_POSTGRES_URL), isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def terminate_connections(url: str) -> int:
    """pg_terminate_backend on every connection to the database but this one: what a failover, a restart or
    an administrator's kill does to the web server's and workers' connections. Returns how many."""
    name = url.rsplit("/", 1)[1]
    engine = create_engine(normalise_url(BASE_POSTGRES_URL), isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    with engine.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).scalar_one()
    engine.dispose()
    return killed


@dataclass
class People:
    authority: int
    admin_email: str
    practitioners: dict[str, int]  # username: id
    emails: dict[int, str]


def seed_people(runtime: Runtime) -> People:
    """An authority, its administrator and two practitioners, vetted and trained, with passwords and
    authenticators (sealed with this run's ECAF_TOTP_KEY, as the servers will read them)."""
    with runtime.db.session() as session:
        authority = Authority(code="FLT", name="Faultshire", admin_email="caf-admin@faultshire.test",
                              safeguarding_phone="0100 000 999")
        session.add(authority)
        session.flush()
        school = Organisation(name="Faultshire Primary", kind="school", authority_id=authority.id)
        session.add(school)
        session.flush()
        users = [User(username=username, email=f"{username}@faultshire.test", full_name=name, job_title=job,
                      role=role, organisation_id=school.id, phone="0100 000 111", created_at=now(), **VETTED)
                 for username, name, job, role in (("ada", "Ada Admin", "CAF co-ordinator", "administrator"),
                                                   ("priya", "Priya Shah", "Teacher", "practitioner"),
                                                   ("tom", "Tom Okafor", "School nurse", "practitioner"))]
        session.add_all(users)
        session.flush()
        people = People(authority.id, authority.admin_email,
                        {u.username: u.id for u in users if u.role == "practitioner"},
                        {u.id: u.email for u in users})
    for user_id in people.practitioners.values():
        give_credentials(runtime, user_id)
    return people


def current_code(runtime: Runtime, user_id: int) -> str:
    """The user's TOTP code now, from their stored secret opened with the run's ECAF_TOTP_KEY."""
    with runtime.db.session() as session:
        return totp.current_code(runtime.config, session.get(User, user_id))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_behind(proxy_port: int, real_redis_url: str) -> str:
    """The real Redis URL's database, reached through the proxy."""
    return f"redis://127.0.0.1:{proxy_port}{urlsplit(real_redis_url).path or '/0'}"


@dataclass
class Deployment:
    keys: Keys
    database_url: str
    env: dict[str, str]
    log_dir: Path
    web_port: int = field(default_factory=free_port)
    processes: list[EcafProcess] = field(default_factory=list)

    @classmethod
    def prepare(cls, tmp: Path, database_url: str, redis_url: str, processes_dir: Path, *, smtp_port: int,
                index_url: str, sweep_interval: int, timer_poll: int) -> "Deployment":
        keys = Keys()
        metrics = tmp / "metrics"
        for directory in (tmp / "logs", metrics, tmp / "checkpoints", tmp / "attachments"):
            directory.mkdir(parents=True, exist_ok=True)
        env = environment({
            "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "MAIL_FROM": "ecaf@faultshire.test",
            "INDEX_ENDPOINT_URL": index_url, "ECAF_ADMIN_EMAIL": "fallback-admin@faultshire.test",
            "ECAF_SWEEP_INTERVAL": str(sweep_interval), "ECAF_TIMER_POLL": str(timer_poll),
            "SECRET_KEY": keys.secret, "ECAF_TOTP_KEY": keys.totp, "ECAF_AUDIT_KEY": keys.audit,
            "ECAF_TRANSFER_KEY": keys.transfer, "ECAF_COOKIE_SECURE": "false",
            "ECAF_PROCESSES_DIR": str(processes_dir), "ECAF_AUDIT_CHECKPOINT_DIR": str(tmp / "checkpoints"),
            "ECAF_ATTACHMENTS_DIR": str(tmp / "attachments"),
            # One metrics directory for the web server and the workers, as on one production host.
            "ECAF_METRICS_DIR": str(metrics), "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "ECAF_WEB_PROCESSES": "1", "ECAF_WEB_THREADS": "4",
        })
        return cls(keys, database_url, env, tmp / "logs")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def migrate_and_deploy(self, processes_dir: Path) -> None:
        run_command(self.env, "db", "upgrade")
        run_command(self.env, "processes", "deploy", str(processes_dir), "--note", "deadlines of seconds, for the "
                    "production fault test")

    def start(self, name: str, args: list[str]) -> EcafProcess:
        process = EcafProcess(name, args, self.env, self.log_dir).start()
        self.processes.append(process)
        return process

    def start_web(self) -> EcafProcess:
        return self.start("web", [*SERVE, "--host", "127.0.0.1", "--port", str(self.web_port)])

    def start_worker(self, name: str) -> EcafProcess:
        return self.start(name, ["worker"])

    def wait_until_serving(self, web: EcafProcess, timeout: float = 60) -> None:
        def healthy():
            if not web.running():
                raise AssertionError(f"the web server exited {web.exit_code()}:\n{web.log_tail()}")
            try:
                return requests.get(self.base_url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for("the web server to answer /healthz", healthy, timeout, explain=web.log_tail)

    def readiness(self) -> tuple[int, str]:
        try:
            answer = requests.get(self.base_url + "/readyz", timeout=5)
            return answer.status_code, answer.text
        except requests.RequestException as exc:
            return 0, f"no answer: {type(exc).__name__}"

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


def children(count: int) -> list[Child]:
    """Children no CAF or index entry holds yet (each its own family name and date of birth)."""
    given = ["Amir", "Bea", "Cal", "Dara", "Eli", "Fern", "Gus", "Hana", "Ivo", "Jude", "Kit", "Lena"]
    family = ["Adeyemi", "Brown", "Clarke", "Davies", "Evans", "Fraser", "Green", "Hughes", "Iqbal", "Jones",
              "Khan", "Lewis"]
    return [Child(given[i % 12], family[i % 12], date(2013 + i % 7, 1 + i % 12, 3 + i % 25)) for i in range(count)]
