"""`make bench-smoke`: every benchmark in bench/ at a tiny size, so one that breaks fails CI.

    python bench/smoke.py [--jobs 2] [SCRIPT ...]

Runs each benchmark listed in RUNS as a subprocess with its tiny arguments and checks that it exits
0 and prints every figure line its entry names (regular expressions, matched line by line). What
the figures say is never checked: speed is read from `make bench`, not asserted. Fails (exit 1,
naming the script and showing its output) when a run fails, misses a line, or when bench/ holds a
benchmark that RUNS does not list, so a new benchmark cannot be forgotten: a benchmark is a file in
bench/ that runs as a script (`if __name__ == "__main__":`), except the ones NOT_BENCHMARKS names.
Modules without that line (scratch.py, timing.py, seeding helpers) are helpers.

PostgreSQL and Redis are the benchmarks' defaults (127.0.0.1:5432 and :6379); each benchmark makes
its own scratch database there and drops it. SQLite files go to a temporary folder removed after.
Naming scripts runs only their entries (the check for unlisted benchmarks still runs). --jobs runs
that many benchmarks at once (default 2: most wait on a database or a server as much as they compute).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
NOT_BENCHMARKS = {
    "smoke.py": "this harness",
    "profiled_server.py": "the server bench/http_completions.py --profile starts (smoke-run through it)",
}
POSTGRES = "postgresql://postgres@127.0.0.1:5432"  # the server the benchmarks default to (bench/scratch.py)
TIMEOUT = 300  # seconds for one run: a hung benchmark fails instead of hanging CI
NUMBER = r"[\d,]+(\.\d+)?"
TIMED = rf"median +{NUMBER} ms +p95 +{NUMBER} ms$"


@dataclass(frozen=True)
class Run:
    script: str
    args: tuple[str, ...]
    figures: tuple[str, ...]  # each must match at least one line of the output


def engine_figures(backend: str) -> tuple[str, ...]:
    return (rf"^\(b\) eCAF engine step on {backend}: median {NUMBER} ms, p95 {NUMBER} ms over 2 steps; "
            rf"{NUMBER}x the bare floor$",
            rf"^\(c\) stored per episode in delivery on {backend}: workflow state \d+ B, artefacts and forms \d+ B$")


def expression_row(label: str) -> str:
    return rf"^{label} +{NUMBER} +{NUMBER} +{NUMBER}x +{NUMBER} +{NUMBER}x$"


def migration_figures(backend: str) -> tuple[str, ...]:
    return (rf"^{backend}: 3 episodes in Assessment$",
            rf"^  dry run: +{NUMBER} s +{NUMBER} episodes/s +peak memory \+{NUMBER} MB$",
            rf"^  migration: +{NUMBER} s +{NUMBER} episodes/s +peak memory \+{NUMBER} MB")


def http_figures(*levels: int) -> tuple[str, ...]:
    return tuple(rf"^C{level} +{NUMBER} completions/s +p50 +{NUMBER} ms +p95 +{NUMBER} ms +server CPU +{NUMBER} "
                 rf"ms a completion" for level in levels) + (
        rf"^load average at start: {NUMBER} {NUMBER} {NUMBER}$", rf"^load average at end: {NUMBER} {NUMBER} {NUMBER}$")


def state_figures(backend: str) -> tuple[str, ...]:
    step = rf"state +\d+ B, action-plan step +{NUMBER} ms \(CPU +{NUMBER} ms\)"
    return (rf"^  {backend}: +1 review cycles: {step}$", rf"^  {backend}: +2 review cycles: {step} +\({NUMBER}x the state",
            rf"^  {backend}: +0 settled requests: {step}$",
            rf"^  {backend}: +1 settled requests: {step} +\({NUMBER}x the state")


ACCESS_FIGURES = (rf"^episodes a practitioner may open \(count\) +{TIMED}",
                  rf"^one episode through visible_episode +{TIMED}", rf"^the practitioner's task list +{TIMED}",
                  rf"^append, one transaction per row +{NUMBER} rows/s",
                  rf"^ecaf audit verify over \d+ rows +{NUMBER} rows/s",
                  rf"^search over 40 entries \(audited\) +{TIMED}")

RUNS = (
    Run("engine.py", ("--floor-runs", "3", "--steps", "2"),
        (rf"^\(a\) bare SpiffWorkflow step .*: median {NUMBER} ms$",
         *engine_figures("sqlite"), *engine_figures("postgresql"))),
    Run("state.py", ("--cycles", "1,2", "--requests", "0,1", "--episodes", "1"),
        (*state_figures("sqlite"), *state_figures("postgresql"))),
    Run("timers.py", ("--wake", "20", "--due", "10", "--over", "3"),
        (rf"^\(a\) postgresql, 2 worker\(s\): 20 due episodes woken in {NUMBER} s \({NUMBER} episodes/s\); "
         r"each exactly once",
         rf"^\(b\) postgresql, 2 worker\(s\): 10 deadlines due over 3 s: lateness p50 {NUMBER} s, p95 {NUMBER} s, "
         rf"p99 {NUMBER} s, max {NUMBER} s; each exactly once",
         r"^    postgresql: SMTP received \d+ emails, none twice$")),
    Run("expressions.py", ("--runs", "20", "--repeats", "1"),
        (r"^eCAF expression benchmark: one episode .* evaluates \d+ expressions",
         expression_row("script set_deadlines"), expression_row("gateway conditions of caf_episode"),
         expression_row(r"every script \(\d+ evaluations\)"), expression_row(r"every condition \(\d+ evaluations\)"),
         expression_row(r"per evaluation, all \d+"), expression_row(r"the whole episode \(sum\)"))),
    Run("web.py", ("--runs", "1"),
        (*(rf"^{re.escape(label)} +{TIMED}" for label in (
            "(a) argon2id password check", "(a) sign-in, password and code (4 requests)", "(b) task list",
            "(b) episode page (delivery)", "(b) assessment: its task list of sections",
            "(b) checklist submitted with an error (400)", "(c) PDF of the CAF in delivery")),
         rf"^    its size +{NUMBER} KB$")),
    Run("forms.py", ("--runs", "2", "--profile"), (rf"^assessment, errors: warm, CPU +{TIMED}", r"top ten by own time:$")),
    Run("access.py", ("--episodes", "40", "--runs", "2", "--audit-rows", "5"),
        (r"^eCAF access benchmark: 40 open episodes, \d+ practitioners, SQLite$", *ACCESS_FIGURES)),
    Run("access.py", ("--episodes", "40", "--runs", "2", "--audit-rows", "5", "--postgres", POSTGRES),
        (r"^eCAF access benchmark: 40 open episodes, \d+ practitioners, PostgreSQL$", *ACCESS_FIGURES)),
    Run("admin_lists.py", ("--episodes", "300", "--authorities", "2", "--runs", "1"),
        (r"^seeded 300 episodes over 2 authorities in \d+ s",
         rf"^whole dashboard \(every count, capped at {NUMBER}\) +{TIMED}", rf"^count: overdue +{TIMED}",
         rf"^list: open +{TIMED}", rf"^list: closed +{TIMED}", rf"^list: open, page 100 +{TIMED}",
         rf"^list: open, delivery, one lead, started since +{TIMED}", rf"^index search: name and postcode +{TIMED}",
         rf"^task list: a practitioner's ready tasks +{TIMED}")),
    Run("migration.py", ("--episodes", "3"),
        (*migration_figures("SQLite"), *migration_figures("PostgreSQL"),
         rf"^process peak resident memory: {NUMBER} MB$")),
    Run("http_completions.py", ("--concurrency", "1,2", "--completions", "2", "--profile"),
        (r"^eCAF HTTP benchmark, PostgreSQL: ecaf serve \(gunicorn\) with 2 processes of \d+ threads, under cProfile",
         *http_figures(1, 2), r"top 15 by cumulative:$", r"top 15 by tottime:$")),
    Run("http_completions.py", ("--sqlite", "--redis", "", "--concurrency", "1", "--completions", "1"),
        (r"^eCAF HTTP benchmark, SQLite: ecaf serve \(gunicorn\) with 1 process of \d+ threads;",
         *http_figures(1))),
)


def benchmarks() -> set[str]:
    """The files in bench/ that run as scripts, less the ones that are not benchmarks."""
    return {path.name for path in BENCH.glob("*.py")
            if path.name not in NOT_BENCHMARKS and re.search(r"^if __name__ == .__main__.:", path.read_text(), re.M)}


def unlisted() -> set[str]:
    return benchmarks() - {run.script for run in RUNS}


def missing_figures(output: str, patterns: tuple[str, ...]) -> list[str]:
    lines = output.splitlines()
    return [pattern for pattern in patterns if not any(re.search(pattern, line) for line in lines)]


def execute(run: Run, scratch: Path) -> tuple[int | str, str]:
    """The run's exit code (or why it has none) and its output; a run past TIMEOUT is stopped with
    SIGTERM first, so its scratch database is dropped."""
    process = subprocess.Popen([sys.executable, str(BENCH / run.script), *run.args], cwd=BENCH.parent,
                               env={**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return f"no exit within {TIMEOUT} s", output


def check(run: Run, scratch: Path) -> str | None:
    """Run one entry and print its verdict; why it failed, or None."""
    began = time.monotonic()
    code, output = execute(run, scratch)
    missing = missing_figures(output, run.figures)
    said = shlex.join([f"bench/{run.script}", *run.args])
    if code == 0 and not missing:
        print(f"ok      {said}  ({time.monotonic() - began:.0f} s)", flush=True)
        return None
    why = f"exited {code}" if code != 0 else "missed " + "; ".join(missing)
    print(f"FAILED  {said}: {why}\n{'-' * 30} its output {'-' * 30}\n{output.rstrip()}\n{'-' * 71}", flush=True)
    return f"bench/{run.script}: {why}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="*", help="run only these benchmarks' entries (e.g. engine.py)")
    parser.add_argument("--jobs", type=int, default=2, help="benchmarks run at once (each is its own process)")
    args = parser.parse_args()
    failures = []
    forgotten = unlisted()
    if forgotten:
        failures.append(f"bench/smoke.py does not list {', '.join(sorted(forgotten))}: give each its tiny "
                        f"arguments and figure lines in RUNS")
    unknown = set(args.scripts) - {run.script for run in RUNS}
    if unknown:
        failures.append(f"no smoke run for {', '.join(sorted(unknown))}")
    chosen = [run for run in RUNS if not args.scripts or run.script in args.scripts]
    scratch = Path(tempfile.mkdtemp(prefix="ecaf-bench-smoke-"))
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            failures += [why for why in pool.map(lambda run: check(run, scratch), chosen) if why]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nbench-smoke: {len(chosen)} runs in {time.monotonic() - started:.0f} s, {args.jobs} at once; load "
          f"average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
