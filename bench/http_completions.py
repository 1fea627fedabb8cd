"""HTTP benchmark: user-task completions over real HTTP against `ecaf serve` (gunicorn), at several
concurrencies, with the server's CPU time per completion.

    python bench/http_completions.py [--concurrency 1,4,16] [--completions 160] [--postgres SERVER]
                                     [--redis URL] [--processes 2] [--sqlite] [--profile]

The benchmark makes its own scratch PostgreSQL database on SERVER (dropped afterwards; `--sqlite`: a
SQLite file instead), seeds one episode per completion with its pre-assessment checklist ready for
a practitioner, and starts `ecaf serve` with --processes gunicorn processes (8 threads each), as
production runs it: several processes need Redis (`--redis`, a db that must be empty; it is flushed
afterwards; nothing consumes the deliveries a completion queues). For each concurrency C, C clients
(threads, each its own signed-in practitioner with a session of its own) complete COMPLETIONS / C
checklists each as a browser does: the POST of the form, then the GET of the page it redirects to
(the next form, the consent). Printed per concurrency: completions per second, p50 and p95 of a
completion (POST + GET), and the CPU time per completion of the server (the gunicorn master and its
workers, from /proc before and after the run, so a busy machine hardly moves it) and of
PostgreSQL's sessions on the scratch database (less those the pool closed during the run). A
warm-up round (every process compiles its templates) runs first and is not counted. `--profile`
runs each server process under cProfile (bench/profiled_server.py; one request at a time per
process, so its rates are not the server's) and prints the top 15 functions of the measured
requests by cumulative and by own CPU time.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on the path, where a benchmark could stand in
# for a standard module: the folder goes, and bench's helpers come by their full name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from contextlib import ExitStack  # noqa: E402
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
from bench.scratch import SERVER, scratch_database  # noqa: E402
from bench.served import Server, cpu_spent, cpu_times, load_average  # noqa: E402

ECAF = [sys.executable, "-c", "from app.cli import main; main(prog_name='ecaf')"]
PROFILED = [sys.executable, str(_HERE / "profiled_server.py")]
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "a long benchmark password for eCAF"


def keys() -> dict[str, str]:
    """Keys for this run only: the server and the seeding share them."""
    return {"SECRET_KEY": secrets.token_hex(32), "ECAF_TOTP_KEY": Fernet.generate_key().decode(),
            "ECAF_AUDIT_KEY": secrets.token_hex(32), "ECAF_TRANSFER_KEY": secrets.token_hex(32)}


def practitioner(config: Config, organisation: Organisation, username: str, password_hash: str, secret: str) -> User:
    today = now().date()
    return User(username=username, email=f"{username}@bench.example", full_name=f"Bench {username}",
                job_title="Teacher", role="practitioner", organisation_id=organisation.id, created_at=now(),
                password_hash=password_hash, totp_secret=totp.seal(config, secret), totp_enrolled_at=now(),
                vetting_type="enhanced_dbs", vetting_reference=f"B-{username}",
                vetting_checked_on=today - timedelta(days=30), vetting_expires_on=today + timedelta(days=900),
                training_completed_on=today - timedelta(days=20))


def seed(config: Config, rounds: list[tuple[str, int, int]]) -> dict[str, list[dict]]:
    """For each round (name, clients, tasks each) its own practitioners (a code is accepted once, so no
    account signs in twice), each with children whose checklist is ready for them, started through
    the engine as the Start a CAF page starts them."""
    runtime = Runtime.build(config)
    people: dict[str, list[dict]] = {name: [] for name, _, _ in rounds}
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(config.processes_dir))
        authority = Authority(code="BEN", name="Benchshire", admin_email="admin@bench.example")
        session.add(authority)
        session.flush()
        school = Organisation(name="Bench Primary", kind="school", authority_id=authority.id)
        session.add(school)
        session.flush()
        password_hash = passwords.hash_password(PASSWORD)
        for name, clients, each in rounds:
            for n in range(clients):
                secret, username = pyotp.random_base32(), f"{name.lower()}-{n:03}"
                user = practitioner(config, school, username, password_hash, secret)
                children = [Child(given_names=f"Bench{t}", family_name=f"{name}-{n}", postcode="BE1 1NC",
                                  date_of_birth=date(2015, 1, 1) + timedelta(days=n * 7 + t),
                                  address="1 Bench Road", home_authority_id=authority.id, created_at=now())
                            for t in range(each)]
                session.add_all([user, *children])
                session.flush()
                people[name].append({"username": username, "secret": secret, "user_id": user.id,
                                     "children": [child.id for child in children], "tasks": []})
    for person in (p for group in people.values() for p in group):
        for child_id in person.pop("children"):
            episode = runtime.engine.start_episode(child_id=child_id, originator_id=person["user_id"]).episode_id
            with runtime.db.session() as session:
                person["tasks"].append(session.scalar(select(HumanTask.id).where(
                    HumanTask.episode_id == episode, HumanTask.name == "pre_assessment_checklist",
                    HumanTask.status == "ready")))
    runtime.db.dispose()
    return people


def expect(response, status: int, what: str):
    if response.status_code != status:
        raise RuntimeError(f"{what} answered {response.status_code}, not {status}")
    return response


def token(response) -> str:
    found = TOKEN.search(response.text)
    if not found:
        raise RuntimeError(f"{response.url} has no CSRF token")
    return found.group(1)


def signed_in(server: Server, person: dict) -> requests.Session:
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


def complete(server: Server, client: requests.Session, task_id: int, csrf: str) -> tuple[float, float, str]:
    """Submit a checklist and open the page it leads to; the seconds of each, and that page's token."""
    began = time.perf_counter()
    posted = expect(client.post(server.url(f"/tasks/{task_id}"), data={
        "action": "submit", "decision": "full_caf", "csrf_token": csrf}, allow_redirects=False), 302, "a completion")
    submitted = time.perf_counter()
    page = expect(client.get(server.url(posted.headers["Location"])), 200, "the page after a completion")
    return submitted - began, time.perf_counter() - submitted, token(page)


def drive(server: Server, clients: list[requests.Session], people: list[dict], database: str | None,
          profile_switch: Path | None) -> dict:
    """Every client opens its first form; then all complete their tasks at once, measured (and
    profiled, if asked) from the moment all are ready until the last has finished."""
    posts, gets, problems = [], [], []
    ready, go = threading.Barrier(len(people) + 1), threading.Barrier(len(people) + 1)
    lock = threading.Lock()

    def work(client: requests.Session, person: dict) -> None:
        try:
            csrf = token(expect(client.get(server.url(f"/tasks/{person['tasks'][0]}")), 200, "the first form"))
        except Exception as exc:  # noqa: BLE001 - reported with the figures, and the run fails
            csrf = None
            with lock:
                problems.append(f"{person['username']}: {exc}")
        finally:
            ready.wait()
            go.wait()
        if csrf is None:
            return
        try:
            for task_id in person["tasks"]:
                post, get, csrf = complete(server, client, task_id, csrf)
                with lock:
                    posts.append(post)
                    gets.append(get)
        except Exception as exc:  # noqa: BLE001 - reported with the figures, and the run fails
            with lock:
                problems.append(f"{person['username']}: {exc}")

    threads = [threading.Thread(target=work, args=pair) for pair in zip(clients, people)]
    for thread in threads:
        thread.start()
    ready.wait()
    in_database = (lambda _pid, _ppid, command: command.startswith("postgres:") and f" {database} " in command)
    server_before, database_before = server.cpu(), cpu_times(in_database) if database else {}
    if profile_switch:
        profile_switch.touch()
    go.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if profile_switch:
        profile_switch.unlink()
    return {"seconds": seconds, "cpu": cpu_spent(server_before, server.cpu()),
            "database_cpu": cpu_spent(database_before, cpu_times(in_database)) if database else None,
            "posts": posts, "gets": gets, "problems": problems}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def print_figures(level: int, found: dict) -> None:
    done = len(found["posts"])
    both = [post + get for post, get in zip(found["posts"], found["gets"])]
    line = f"C{level:<3} {done / found['seconds']:7.1f} completions/s"
    if done:
        line += (f"   p50 {percentile(both, 50) * 1000:7.1f} ms   p95 {percentile(both, 95) * 1000:7.1f} ms"
                 f"   server CPU {found['cpu'] * 1000 / done:6.1f} ms a completion")
        if found["database_cpu"] is not None:
            line += f"   PostgreSQL CPU {found['database_cpu'] * 1000 / done:5.1f} ms"
    print(line)
    if done:
        print(f"       medians: the POST {statistics.median(found['posts']) * 1000:.1f} ms, "
              f"the next page's GET {statistics.median(found['gets']) * 1000:.1f} ms ({done} completions)")
    for problem in found["problems"]:
        print(f"       failed: {problem}")


def print_profile(folder: Path) -> None:
    files = sorted(str(path) for path in folder.glob("*.prof"))
    if not files:
        raise SystemExit("--profile: no server process wrote a profile")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(*files, stream=out).sort_stats(order).print_stats(15)
        table = out.getvalue()
        print(f"\nprofile of the measured requests in {len(files)} server processes (CPU time of the threads "
              f"serving them), top 15 by {order}:")
        print(table[table.index("   ncalls"):].rstrip() if "   ncalls" in table else table.rstrip())


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,4,16", help="clients at once, one run each (comma-separated)")
    parser.add_argument("--completions", type=int, default=160, help="completions per run (split among its clients)")
    parser.add_argument("--postgres", default=SERVER, help="the PostgreSQL server for the scratch database")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12",
                        help="an empty Redis db (flushed afterwards); empty: one process, which runs the jobs")
    parser.add_argument("--processes", type=int, default=2, help="gunicorn processes (with --redis)")
    parser.add_argument("--profile", action="store_true", help="profile the server processes (cProfile)")
    args = parser.parse_args()
    try:
        args.levels = [int(part) for part in args.concurrency.split(",") if part.strip()]
    except ValueError:
        args.levels = []
    if not args.levels or min(args.levels) < 1 or args.completions < 1:
        parser.error("--concurrency takes whole numbers of at least 1, --completions at least 1")
    return args


def empty_redis(url: str):
    """The Redis db the server will use, refused unless empty: it is flushed afterwards."""
    from redis import Redis

    redis = Redis.from_url(url)
    if redis.dbsize():
        raise SystemExit(f"Redis db {url} is not empty: give --redis an empty db (it is flushed afterwards)")
    return redis


def main() -> None:
    args = parse()
    # SIGTERM (a harness's timeout) unwinds like Ctrl-C: the server is stopped and the scratch database dropped.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    print(f"load average at start: {load_average()}")
    with ExitStack() as stack:
        folder = Path(tempfile.mkdtemp(prefix="ecaf-bench-http-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        if args.sqlite:
            database_url, backend, database = f"sqlite:///{folder / 'bench.db'}", "SQLite", None
        else:
            database_url = stack.enter_context(scratch_database("http", args.postgres))
            backend, database = "PostgreSQL", database_url.rsplit("/", 1)[1]
        redis = empty_redis(args.redis) if args.redis else None
        if redis is not None:
            stack.callback(redis.flushdb)
        run(args, folder, database_url, backend, database)
    print(f"load average at end: {load_average()}")


def run(args, folder: Path, database_url: str, backend: str, database: str | None) -> None:
    upgrade(database_url)
    chosen = keys()
    config = Config(database_url=database_url, processes_dir=PROJECT_ROOT / "processes",
                    secret_key=chosen["SECRET_KEY"], totp_key=chosen["ECAF_TOTP_KEY"],
                    audit_key=chosen["ECAF_AUDIT_KEY"], transfer_key=chosen["ECAF_TRANSFER_KEY"])
    rounds = [("warm-up", max(args.levels), 1)] + [
        (f"C{level}", level, max(1, args.completions // level)) for level in args.levels]
    t0 = time.perf_counter()
    plan = seed(config, rounds)
    seeded = time.perf_counter() - t0
    metrics = folder / "metrics"
    metrics.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ECAF_BIND", "PORT", "GUNICORN_CMD_ARGS")}
    env.update(chosen, DATABASE_URL=database_url, ECAF_COOKIE_SECURE="false", ECAF_LOG_FORMAT="json",
               ECAF_WEB_PROCESSES=str(args.processes), PYTHONUNBUFFERED="1", PROMETHEUS_MULTIPROC_DIR=str(metrics))
    if args.redis:
        env["REDIS_URL"] = args.redis
    processes = args.processes if args.redis else 1
    threads = env.setdefault("ECAF_WEB_THREADS", "8")
    profiles = folder / "profiles"
    if args.profile:
        profiles.mkdir()
        env["ECAF_BENCH_PROFILE_DIR"] = str(profiles)
    print(f"eCAF HTTP benchmark, {backend}: ecaf serve (gunicorn) with {processes} "
          f"process{'es' if processes != 1 else ''} of {threads} threads{', under cProfile' if args.profile else ''}; "
          f"{sum(len(p['tasks']) for people in plan.values() for p in people)} episodes at a checklist seeded "
          f"in {seeded:.0f} s; a completion is the POST of the form and the GET of the next page\n")
    server = Server(PROFILED if args.profile else ECAF, env, folder / "serve.log")
    failed = False
    try:
        clients = {name: [signed_in(server, person) for person in people] for name, people in plan.items()}
        for name, _level, _each in rounds:
            measured = name != "warm-up"
            found = drive(server, clients[name], plan[name], database,
                          profiles / "on" if args.profile and measured else None)
            if measured:
                print_figures(int(name[1:]), found)
            failed = failed or bool(found["problems"])
    finally:
        server.stop()
    if failed:
        print(f"\nthe server's log ends:\n{server.log.read_text()[-3000:]}")
        raise SystemExit(1)
    if args.profile:
        print_profile(profiles)


if __name__ == "__main__":
    main()
