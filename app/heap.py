"""The garbage collector settled for a long-running process, once its code and app are loaded.

A step makes thousands of short-lived objects (a workflow's tasks, ORM rows, JSON), so with the
interpreter's defaults the young generation is collected every 700 allocations and the oldest
every few dozen of those, each time walking every module, class and cached spec the process
loaded: a tenth to a fifth of a deadline's CPU. Freezing what is loaded at start-up takes it out
of every collection for good (it is never garbage), and a larger young generation collects less
often; cycles are still collected, so memory stays bounded.
"""
from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # allocations between young collections (the interpreter's default: 700)


def settle() -> None:
    """Call once the process has loaded what it keeps (the app, its specs), before it takes work."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
