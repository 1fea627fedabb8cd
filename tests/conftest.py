"""Fixtures: every engine test runs on SQLite and on PostgreSQL; Redis tests use a real Redis.

Without PostgreSQL or Redis the tests that need them skip, saying why; under CI=true they fail.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from datetime import date
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.clock import now
from app.config import PROJECT_ROOT, Config
from app.db import Database, normalise_url
from app.engine.library import Bundle, deploy
from app.jobs.runtime import Runtime
from app.migrate import upgrade
from app.models import Authority, Base, Child, HumanTask, Organisation, User

# Under pytest-xdist each worker (gw0, gw1, ...) gets its own PostgreSQL database and Redis db.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
BASE_POSTGRES_URL = os.environ.get("ECAF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_URL = BASE_POSTGRES_URL if WORKER == 0 else f"{BASE_POSTGRES_URL}_w{WORKER}"
_REDIS = os.environ.get("ECAF_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
REDIS_URL = _REDIS if WORKER == 0 else f"{_REDIS.rsplit('/', 1)[0]}/{int(_REDIS.rsplit('/', 1)[1]) - WORKER}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Audit rows in tests are keyed with this; `ecaf` commands under test read it from the environment.
TEST_AUDIT_KEY = "test-audit-key-0123456789abcdef0123456789abcdef"
os.environ["ECAF_AUDIT_KEY"] = TEST_AUDIT_KEY
# Likewise the Flask secret and the TOTP key: the commands refuse to start without them.
TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789abcdef"
TEST_TOTP_KEY = "dGVzdC10b3RwLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE="
os.environ["SECRET_KEY"] = TEST_SECRET_KEY
os.environ["ECAF_TOTP_KEY"] = TEST_TOTP_KEY


def unavailable(reason: str):
    """Skip on a developer machine; fail in CI, where every service must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every backend must run)")
    pytest.skip(reason)


@pytest.fixture
def redis_connection():
    """The test Redis db, reachable and empty, emptied again afterwards."""
    from redis import Redis

    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        connection.ping()
    except Exception as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    connection.flushdb()
    yield connection
    connection.flushdb()


def create_database_beside(url: str) -> None:
    """The PostgreSQL database `url` names, made once on the server of the configured one."""
    name = url.rsplit("/", 1)[1]
    engine = create_engine(normalise_url(BASE_POSTGRES_URL), isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _create_worker_database() -> None:
    """A worker's own database, made once beside the configured one."""
    if POSTGRES_URL != BASE_POSTGRES_URL:
        create_database_beside(POSTGRES_URL)


@contextmanager
def local_http_server(handler):
    """A real HTTP server on a free loopback port, answering with `handler`; `.received` collects
    what the handler chooses to keep."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _postgres_reachable() -> str | None:
    try:
        _create_worker_database()
        engine = create_engine(normalise_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL is not reachable at {POSTGRES_URL}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory):
    """Migrated, empty databases, built once per test session."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('db') / 'ecaf-test.db'}"}
    upgrade(urls["sqlite"])
    problem = _postgres_reachable()
    if problem is None:
        engine = create_engine(normalise_url(POSTGRES_URL))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(POSTGRES_URL)
        urls["postgresql"] = POSTGRES_URL
    else:
        urls["postgresql_problem"] = problem
    return urls


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, database_urls):
    if request.param not in database_urls:
        unavailable(database_urls["postgresql_problem"])
    return database_urls[request.param]


def _empty(db: Database) -> None:
    from app.audit import install_append_only, remove_append_only

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        remove_append_only(conn)  # the audit trail refuses deletion, except here between tests
        if db.is_postgresql:
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
        install_append_only(conn)


@pytest.fixture
def config(database_url, tmp_path) -> Config:
    return Config(database_url=database_url, processes_dir=PROJECT_ROOT / "processes",
                  admin_email="fallback-admin@ecaf.test", testing=True, audit_key=TEST_AUDIT_KEY,
                  secret_key=TEST_SECRET_KEY, totp_key=TEST_TOTP_KEY)


@pytest.fixture
def runtime(config):
    runtime = Runtime.build(config)
    _empty(runtime.db)
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(config.processes_dir))
    yield runtime
    runtime.db.dispose()


@pytest.fixture
def people(runtime):
    """An authority with an administrator, two practitioners and a child."""
    with runtime.db.session() as session:
        authority = Authority(code="TST", name="Testshire", admin_email="admin@testshire.test",
                              safeguarding_phone="0100 000 999")
        session.add(authority)
        session.flush()
        school = Organisation(name="Test Primary", kind="school", authority_id=authority.id)
        session.add(school)
        session.flush()

        def user(username, name, role="practitioner"):
            u = User(username=username, email=f"{username}@testshire.test", full_name=name, job_title="Teacher",
                     role=role, organisation_id=school.id, phone="0100 000 111", created_at=now(),
                     **VETTED)
            session.add(u)
            return u

        originator, lead, admin = user("olive", "Olive Origin"), user("leah", "Leah Lead"), user("adam", "Adam Admin", "administrator")
        child = Child(given_names="Casey", family_name="Child", date_of_birth=date(2015, 5, 1), postcode="TE1 1ST",
                      address="1 Test Road", home_authority_id=authority.id, created_at=now())
        session.add(child)
        session.flush()
        return {"authority": authority.id, "originator": originator.id, "lead": lead.id, "admin": admin.id,
                "child": child.id, "lead_email": lead.email, "originator_email": originator.email}


# A current vetting check and training: without them an account cannot sign in or see anything.
VETTED = {"vetting_type": "enhanced_dbs", "vetting_reference": "001234567890", "vetting_checked_on": date(2025, 1, 6),
          "vetting_expires_on": date(2030, 1, 6), "training_completed_on": date(2025, 2, 3)}


def other_authority(runtime, *practitioners: str) -> dict:
    """Otherborough: another local authority, its council, its administrator "otto" and, for each
    name given, a practitioner of its own. Returns their ids by name, with "authority" and
    "organisation"."""
    with runtime.db.session() as session:
        elsewhere = Authority(code="OTH", name="Otherborough", admin_email="admin@other.test")
        session.add(elsewhere)
        session.flush()
        town_hall = Organisation(name="Otherborough Council", kind="council_service", authority_id=elsewhere.id)
        session.add(town_hall)
        session.flush()
        people = {"otto": ("Otto Other", "administrator"),
                  **{name: (f"{name.capitalize()} Elsewhere", "practitioner") for name in practitioners}}
        users = {name: User(username=name, email=f"{name}@other.test", full_name=full_name, role=role,
                            organisation_id=town_hall.id, created_at=now(), **VETTED)
                 for name, (full_name, role) in people.items()}
        session.add_all(users.values())
        session.flush()
        return {"authority": elsewhere.id, "organisation": town_hall.id,
                **{name: user.id for name, user in users.items()}}


def ready_task(runtime, episode_id: int, name: str) -> HumanTask:
    from sqlalchemy import select

    with runtime.db.session() as session:
        task = session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name,
                                                      HumanTask.status == "ready"))
    assert task is not None, f"no ready task {name!r} in episode {episode_id}"
    return task


def complete(runtime, episode_id: int, name: str, data: dict, user_id: int | None = None):
    task = ready_task(runtime, episode_id, name)
    return runtime.engine.complete_task(episode_id, task.id, data, user_id or task.assigned_user_id)


def processes_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped process model, for tests that change it."""
    import shutil

    target = tmp_path / "processes"
    shutil.copytree(PROJECT_ROOT / "processes", target)
    return target


@pytest.fixture
def web(runtime, people):
    """The web app over the test database, with the people given passwords and authenticators."""
    from tests.web import give_credentials, make_app

    secrets = {name: give_credentials(runtime, people[name]) for name in ("originator", "lead", "admin")}
    app = make_app(runtime)
    return {"app": app, "runtime": runtime, "people": people, "secrets": secrets}


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def playwright_sync():
    """One Playwright for the whole run: the sync API allows only one at a time in a process."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    if not (PROJECT_ROOT / "static" / "build" / "app.css").exists():
        unavailable("static/build is missing (make assets)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_sync):
    browser = playwright_sync.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
