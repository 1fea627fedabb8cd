"""Cheap guards on bench/. The benchmarks themselves run in `make bench-smoke` (bench/smoke.py, after the
tests in CI), each at a tiny size, not in this suite."""
from __future__ import annotations

import sys

from app.config import PROJECT_ROOT
from bench import smoke


def test_no_benchmark_hides_a_standard_module():
    # `python bench/x.py` puts bench/ first on the import path: a bench/http.py would hide the standard
    # library's http for every benchmark.
    names = {path.stem for path in (PROJECT_ROOT / "bench").glob("*.py")}
    assert not names & set(sys.stdlib_module_names)


def test_the_smoke_run_lists_every_benchmark():
    assert "engine.py" in smoke.benchmarks()  # the rule that finds benchmarks finds them
    assert not smoke.unlisted(), "give each benchmark its tiny arguments and figure lines in bench/smoke.py's RUNS"
