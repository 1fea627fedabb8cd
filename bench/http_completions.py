"""HTTP benchmark: task completions per second, over real HTTP, with `ecaf run` (Flask's development
server) against `ecaf serve` (gunicorn), each started by this benchmark as its own process.

    python bench/http_completions.py [--users 16] [--tasks 10] [--servers run,serve] [--postgres URL]
                         [--redis URL --processes N]

USERS practitioners sign in at once (password, then the code of their authenticator, whose secret
the benchmark seeded), then each completes TASKS pre-assessment checklists as a browser would: open
the task's form, submit it. Printed for each server: completions per second over the whole run,
the server's CPU time per completion, and median and p95 of opening a form and of a completion.

SQLite in a temporary folder unless --postgres names a scratch database (its schema is dropped:
never a test database). Without --redis `ecaf serve` has one process (the background jobs run
inside it); with --redis (a scratch Redis db: it is flushed) it has --processes processes and
nothing runs the queued deliveries, which a completion does not wait for.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on the path, and this file would stand in for
# the standard library's `http` package: the folder goes, and bench's helpers come by their full name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import date, timedelta  # noqa: E402

import pyotp  # noqa: E402
import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app.accounts import passwords, totp  # noqa: E402
from app.clock import now  # noqa: E402
from app.config import PROJECT_ROOT, Config  # noqa: E402
from app.engine.library import Bundle, deploy  # noqa: E402
from app.jobs.runtime import Runtime  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.models import Authority, Child, HumanTask, Organisation, User  # noqa: E402
from bench.timing import report  # noqa: E402

PASSWORD = "a long benchmark password for eCAF"
ECAF = [sys.executable, "-c", "from app.cli import main; main(prog_name='ecaf')"]
SERVERS = {"run": "ecaf run (development server)", "serve": "ecaf serve (gunicorn)"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def keys() -> dict[str, str]:
    """Keys for this run only: the servers and the seeding share them."""
    return {"SECRET_KEY": secrets.token_hex(32), "ECAF_TOTP_KEY": Fernet.generate_key().decode(),
            "ECAF_AUDIT_KEY": secrets.token_hex(32), "ECAF_TRANSFER_KEY": secrets.token_hex(32)}


def seed(config: Config, servers: list[str], users: int, tasks: int) -> dict[str, list[dict]]:
    """For each server its own practitioners (a code is accepted once, so no account signs in twice
    within one 30-second step), each with TASKS children whose checklist is ready for them."""
    runtime = Runtime.build(config)
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(config.processes_dir))
        authority = Authority(code="BEN", name="Benchshire", admin_email="admin@bench.example")
        session.add(authority)
        session.flush()
        school = Organisation(name="Bench Primary", kind="school", authority_id=authority.id)
        session.add(school)
        session.flush()
        password_hash, today = passwords.hash_password(PASSWORD), now().date()
        people = {}
        for server in servers:
            for n in range(users):
                secret = pyotp.random_base32()
                user = User(username=f"{server}-{n:03}", email=f"{server}-{n:03}@bench.example",
                            full_name=f"Bench User {n}", job_title="Teacher", role="practitioner",
                            organisation_id=school.id, created_at=now(), password_hash=password_hash,
                            totp_secret=totp.seal(config, secret), totp_enrolled_at=now(),
                            vetting_type="enhanced_dbs", vetting_reference=f"BENCH{n:06}",
                            vetting_checked_on=today - timedelta(days=30),
                            vetting_expires_on=today + timedelta(days=900),
                            training_completed_on=today - timedelta(days=20))
                session.add(user)
                session.flush()
                people[(server, n)] = (user.id, secret)
        children = {key: [] for key in people}
        for (server, n) in people:
            for t in range(tasks):
                child = Child(given_names=f"Bench{t}", family_name=f"{server.title()}{n}",
                              date_of_birth=date(2015, 1, 1) + timedelta(days=n * 7 + t), postcode="BE1 1NC",
                              address="1 Bench Road", home_authority_id=authority.id, created_at=now())
                session.add(child)
                session.flush()
                children[(server, n)].append(child.id)
    plan: dict[str, list[dict]] = {server: [] for server in servers}
    for (server, n), (user_id, secret) in people.items():
        task_ids = []
        for child_id in children[(server, n)]:
            episode = runtime.engine.start_episode(child_id=child_id, originator_id=user_id).episode_id
            with runtime.db.session() as session:
                task_ids.append(session.scalar(select(HumanTask.id).where(
                    HumanTask.episode_id == episode, HumanTask.name == "pre_assessment_checklist",
                    HumanTask.status == "ready")))
        plan[server].append({"username": f"{server}-{n:03}", "secret": secret, "tasks": task_ids})
    runtime.db.dispose()
    return plan


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children alive now (gunicorn's workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Started:
    def __init__(self, server: str, env: dict, folder: Path):
        self.port = free_port()
        self.log = folder / f"{server}.log"
        command = [*ECAF, server, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        limit = time.monotonic() + 120
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > limit:
                self.stop()
                raise SystemExit(f"ecaf {server} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url("/healthz"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def expect(response, status: int, what: str):
    if response.status_code != status:
        raise RuntimeError(f"{what} answered {response.status_code}, not {status}")
    return response


def token(response) -> str:
    found = TOKEN.search(response.text)
    if not found:
        raise RuntimeError(f"{response.url} has no CSRF token")
    return found.group(1)


def signed_in(server: Started, person: dict) -> requests.Session:
    client = requests.Session()
    page = expect(client.get(server.url("/sign-in")), 200, "the sign-in page")
    expect(client.post(server.url("/sign-in"), data={"username": person["username"], "password": PASSWORD,
                                                      "csrf_token": token(page)}, allow_redirects=False),
           302, "the password")
    page = expect(client.get(server.url("/sign-in/code")), 200, "the code page")
    expect(client.post(server.url("/sign-in/code"), data={"code": pyotp.TOTP(person["secret"]).now(),
                                                          "csrf_token": token(page)}, allow_redirects=False),
           302, "the code")
    return client


def drive(server: Started, people: list[dict]) -> dict:
    """Every user signs in, then all complete their tasks at once; what each request took."""
    clients = [signed_in(server, person) for person in people]
    forms, completions, problems = [], [], []
    start = threading.Barrier(len(people) + 1)
    lock = threading.Lock()

    def work(client: requests.Session, person: dict) -> None:
        try:  # the first form a process renders compiles its templates: not a figure of serving
            client.get(server.url(f"/tasks/{person['tasks'][0]}"))
        finally:
            start.wait()
        try:
            for task_id in person["tasks"]:
                began = time.perf_counter()
                page = expect(client.get(server.url(f"/tasks/{task_id}")), 200, "a task's form")
                opened = time.perf_counter()
                expect(client.post(server.url(f"/tasks/{task_id}"), data={
                    "action": "submit", "decision": "full_caf", "csrf_token": token(page)}, allow_redirects=False),
                    302, "a completion")
                with lock:
                    forms.append(opened - began)
                    completions.append(time.perf_counter() - opened)
        except Exception as exc:  # noqa: BLE001 - reported with the figures, and the run fails
            with lock:
                problems.append(f"{person['username']}: {exc}")

    threads = [threading.Thread(target=work, args=pair) for pair in zip(clients, people)]
    for thread in threads:
        thread.start()
    cpu_before = cpu_seconds(server.process.pid)
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - began, "cpu": cpu_seconds(server.process.pid) - cpu_before,
            "forms": forms, "completions": completions, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16, help="practitioners working at once")
    parser.add_argument("--tasks", type=int, default=10, help="checklists each completes")
    parser.add_argument("--servers", default="run,serve", help="which servers, in order: run, serve")
    parser.add_argument("--postgres", default="", help="a scratch PostgreSQL database (schema dropped); "
                                                       "empty: SQLite")
    parser.add_argument("--redis", default="", help="a scratch Redis db (flushed): `ecaf serve` then runs "
                                                    "--processes processes")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVERS)
    if unknown or not servers:
        raise SystemExit(f"--servers takes run and serve, not {', '.join(sorted(unknown)) or 'nothing'}")
    folder = Path(tempfile.mkdtemp(prefix="ecaf-bench-http-"))
    if args.postgres:
        from bench.scratch import reset_postgres

        database_url, backend = args.postgres, "PostgreSQL"
        reset_postgres(database_url)
    else:
        database_url, backend = f"sqlite:///{folder / 'bench.db'}", "SQLite"
    upgrade(database_url)
    chosen = keys()
    config = Config(database_url=database_url, processes_dir=PROJECT_ROOT / "processes",
                    secret_key=chosen["SECRET_KEY"], totp_key=chosen["ECAF_TOTP_KEY"],
                    audit_key=chosen["ECAF_AUDIT_KEY"], transfer_key=chosen["ECAF_TRANSFER_KEY"])
    plan = seed(config, servers, args.users, args.tasks)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "ECAF_BIND",
                                                            "PORT", "GUNICORN_CMD_ARGS")}
    env.update(chosen, DATABASE_URL=database_url, ECAF_COOKIE_SECURE="false", ECAF_LOG_FORMAT="json",
               ECAF_WEB_PROCESSES=str(args.processes), PYTHONUNBUFFERED="1")
    redis = None
    if args.redis:
        from redis import Redis

        redis = Redis.from_url(args.redis)
        redis.flushdb()
        env["REDIS_URL"] = args.redis
    threads = env.get("ECAF_WEB_THREADS", "8")
    processes = args.processes if args.redis else 1
    shape = f"{processes} process{'es' if processes != 1 else ''} of {threads} threads"
    print(f"eCAF HTTP benchmark, {backend}: {args.users} users at once, {args.tasks} completions each; "
          f"ecaf serve runs {shape}\n")
    failed = False
    for server in servers:
        started = Started(server, env, folder)
        try:
            found = drive(started, plan[server])
        finally:
            started.stop()
        done = len(found["completions"])
        label = SERVERS[server]
        print(f"{label:<34} {done / found['seconds']:8.1f} completions/s   server CPU "
              f"{found['cpu'] * 1000 / max(done, 1):7.1f} ms a completion")
        if done:
            report("    open a task's form", found["forms"])
            report("    a completion (submit)", found["completions"])
        for problem in found["problems"]:
            print(f"    failed: {problem}")
        failed = failed or bool(found["problems"])
    if redis is not None:
        redis.flushdb()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
