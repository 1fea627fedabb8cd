"""Timing shared by the benchmarks: run an action a number of times, print median and 95th percentile."""
from __future__ import annotations

import statistics
import time


def timed(action, runs: int, *, warm: bool = False) -> list[float]:
    """Seconds per run. `warm` runs it once first, untimed, for figures of a running service."""
    if warm:
        action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def report(label: str, samples: list[float], *, width: int = 52) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(f"{label:<{width}} median {statistics.median(samples) * 1000:8.2f} ms   p95 {p95 * 1000:8.2f} ms")
