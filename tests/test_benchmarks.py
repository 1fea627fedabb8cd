"""Every benchmark in bench/ still runs: each at a tiny size, as a subprocess, printing its figures.

What the figures say is not asserted (speed is read from `make bench`, never tested); that each
benchmark exits 0 and prints every figure line is. PostgreSQL figures use a scratch database
named after this worker's test database with `_bench` added, created here: the benchmarks drop
their database's schema, so they never touch the test databases.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT

from .conftest import BASE_POSTGRES_URL, POSTGRES_URL, create_database_beside, unavailable

BENCH_POSTGRES_URL = f"{POSTGRES_URL}_bench"
NUMBER = r"[\d,]+(\.\d+)?"
TIMED = rf"median +{NUMBER} ms +p95 +{NUMBER} ms$"
PROBLEMS: list[str] = []  # why the scratch database could not be made


@pytest.fixture(scope="module")
def bench_postgres() -> str | None:
    """The scratch database's URL, or None (with the reason kept) when PostgreSQL is not reachable."""
    try:
        create_database_beside(BENCH_POSTGRES_URL)
    except Exception as exc:
        PROBLEMS.append(f"PostgreSQL is not reachable at {BASE_POSTGRES_URL}: {type(exc).__name__}")
        return None
    return BENCH_POSTGRES_URL


def need(url: str | None) -> str:
    if url is None:
        unavailable(PROBLEMS[-1])
    return url


@pytest.fixture(autouse=True)
def scratch_files(tmp_path, monkeypatch):
    """The SQLite files the benchmarks make in temporary folders go under the test's own."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / script), *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert done.returncode == 0, f"bench/{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def has_lines(output: str, *patterns: str) -> None:
    lines = output.splitlines()
    missing = [p for p in patterns if not any(re.search(p, line) for line in lines)]
    assert not missing, f"no line matches {missing} in:\n{output}"


def engine_figures(backend: str) -> list[str]:
    return [rf"^\(b\) eCAF engine step on {backend}: median {NUMBER} ms, p95 {NUMBER} ms over 2 steps; "
            rf"{NUMBER}x the bare floor$",
            rf"^\(c\) stored per episode in delivery on {backend}: workflow state \d+ B, artefacts and forms \d+ B$",
            rf"^\(d\) action-plan step on {backend}: {NUMBER} ms after 1 review cycle \(state \d+ B\), "
            rf"{NUMBER} ms after 2 \(state \d+ B\)$",
            rf"^\(e\) one sweep woke 5 due episodes on {backend} in {NUMBER} s \({NUMBER} episodes/s\)$"]


def test_engine_benchmark(bench_postgres):
    output = run("engine.py", "--floor-runs", "3", "--steps", "2", "--cycles", "2", "--wake", "5",
                 f"--postgres={bench_postgres or ''}")
    has_lines(output, rf"^\(a\) bare SpiffWorkflow step .*: median {NUMBER} ms$", *engine_figures("sqlite"))
    need(bench_postgres)
    has_lines(output, *engine_figures("postgresql"))


def test_expression_benchmark():
    output = run("expressions.py", "--runs", "20", "--repeats", "1")
    row = rf" +{NUMBER} +{NUMBER} +{NUMBER}x +{NUMBER} +{NUMBER}x$"
    has_lines(output, r"^eCAF expression benchmark: one episode .* evaluates \d+ expressions",
              rf"^script set_deadlines{row}", rf"^gateway conditions of caf_episode{row}",
              rf"^every script \(\d+ evaluations\){row}", rf"^every condition \(\d+ evaluations\){row}",
              rf"^per evaluation, all \d+{row}", rf"^the whole episode \(sum\){row}")


def test_web_benchmark():
    output = run("web.py", "--runs", "1")
    has_lines(output, *(rf"^{re.escape(label)} +{TIMED}" for label in (
        "(a) argon2id password check", "(a) sign-in, password and code (4 requests)", "(b) task list",
        "(b) episode page (delivery)", "(b) assessment form, sections A-L",
        "(b) checklist submitted with an error (400)", "(c) PDF of the CAF in delivery")),
        rf"^    its size +{NUMBER} KB$")


ACCESS_FIGURES = [rf"^episodes a practitioner may open \(count\) +{TIMED}",
                  rf"^one episode through visible_episode +{TIMED}", rf"^the practitioner's task list +{TIMED}",
                  rf"^append, one transaction per row +{NUMBER} rows/s", rf"^ecaf audit verify over \d+ rows +{NUMBER} rows/s",
                  rf"^search over 40 entries \(audited\) +{TIMED}"]


def test_access_benchmark_on_sqlite():
    output = run("access.py", "--episodes", "40", "--runs", "2", "--audit-rows", "5")
    has_lines(output, r"^eCAF access benchmark: 40 open episodes, \d+ practitioners, SQLite$", *ACCESS_FIGURES)


def test_access_benchmark_on_postgresql(bench_postgres):
    output = run("access.py", "--episodes", "40", "--runs", "2", "--audit-rows", "5",
                 "--database-url", need(bench_postgres))
    has_lines(output, r"^eCAF access benchmark: 40 open episodes, \d+ practitioners, PostgreSQL$", *ACCESS_FIGURES)


def migration_figures(backend: str) -> list[str]:
    return [rf"^{backend}: 3 episodes in Assessment$",
            rf"^  dry run: +{NUMBER} s +{NUMBER} episodes/s +peak memory \+{NUMBER} MB$",
            rf"^  migration: +{NUMBER} s +{NUMBER} episodes/s +peak memory \+{NUMBER} MB"]


def test_migration_benchmark(bench_postgres):
    output = run("migration.py", "--episodes", "3", *(["--postgres", bench_postgres] if bench_postgres else []))
    has_lines(output, *migration_figures("SQLite"), rf"^process peak resident memory: {NUMBER} MB$")
    need(bench_postgres)
    has_lines(output, *migration_figures("PostgreSQL"))


def http_figures(server: str) -> list[str]:
    return [rf"^{re.escape(server)} +{NUMBER} completions/s +server CPU +{NUMBER} ms a completion$",
            rf"^    open a task's form +{TIMED}", rf"^    a completion \(submit\) +{TIMED}"]


def test_http_benchmark_on_sqlite():
    output = run("http_completions.py", "--users", "2", "--tasks", "2")
    has_lines(output, r"^eCAF HTTP benchmark, SQLite: 2 users at once, 2 completions each",
              *http_figures("ecaf run (development server)"), *http_figures("ecaf serve (gunicorn)"))


def test_http_benchmark_on_postgresql(bench_postgres):
    output = run("http_completions.py", "--users", "2", "--tasks", "2", "--servers", "serve", "--postgres", need(bench_postgres))
    has_lines(output, r"^eCAF HTTP benchmark, PostgreSQL: 2 users at once", *http_figures("ecaf serve (gunicorn)"))


def test_admin_lists_benchmark(bench_postgres):
    output = run("admin_lists.py", "--episodes", "300", "--authorities", "2", "--runs", "1",
                 "--database-url", need(bench_postgres))
    has_lines(output, r"^seeded 300 episodes over 2 authorities in \d+ s",
              rf"^whole dashboard \(every count, capped at {NUMBER}\) +{TIMED}", rf"^count: overdue +{TIMED}",
              rf"^list: open +{TIMED}", rf"^list: closed +{TIMED}", rf"^list: open, page 100 +{TIMED}",
              rf"^list: open, delivery, one lead, started since +{TIMED}")


def test_no_benchmark_hides_a_standard_module():
    # `python bench/x.py` puts bench/ first on the import path: a bench/http.py would hide the standard
    # library's http for every benchmark.
    names = {path.stem for path in (PROJECT_ROOT / "bench").glob("*.py")}
    assert not names & set(sys.stdlib_module_names)
