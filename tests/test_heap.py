"""A long-running process settles its heap once loaded: what it loaded is frozen out of every
collection and young objects are collected less often (app/heap.py)."""
from __future__ import annotations

import gc

from app import heap


def test_settling_freezes_what_is_loaded_and_widens_the_young_generation():
    threshold = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 10_000, "the loaded modules, classes and specs are out of the collector's way"
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *threshold[1:])
        garbage = []
        garbage.append(garbage)  # a cycle made after settling is still collected
        del garbage
        assert gc.collect() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
