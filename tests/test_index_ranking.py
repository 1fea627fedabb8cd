"""The national index shows the same best results, in the same order, as scoring every candidate in
full, though it compares names in full only for candidates that could still be among them."""
from __future__ import annotations

import difflib
import random
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

from app.services.index_matching import NAME_SIMILARITY, _best, _score, ratio_bound
from app.services.national_index import normalised_keys

FAMILIES = ["Smith", "Smyth", "smith ", "SMITH", "Smithe", "O'Brien", "OBrien", "Obrién", "Brien", "Nowak",
            "Novak", "Nowakowska", "Kawon", "Lee", "Li", "Leigh", "Ahmed", "Ahmad", "Dahme", "de la Cruz",
            "Delacruz", "Zurc", "Family4300", "Family3400", "Family430", "X"]
POSTCODES = ["W9 2AB", "W9 3CD", "w92ab", "W10 2AB", "SW1A 1AA", "SW1A 2BB", None]
BIRTHS = [date(2015, 3, 4), date(2015, 4, 3), date(2015, 3, 14), date(2016, 3, 4), date(2015, 5, 5), None]


def every_entry_scored(keys, entries, limit: int) -> list[tuple]:
    scored = []
    for entry in entries:
        match = _score(keys, entry)
        if match is not None:
            scored.append((match[2], -entry.updated_at.timestamp(), match, entry))
    scored.sort(key=lambda row: row[:2])  # stable: ties keep the entries' order
    return [(match, entry) for _, _, match, entry in scored[:limit]]


def _entries(rng: random.Random, count: int) -> list:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    # Numbered, so two entries alike in every key are still told apart; few distinct times, so they tie.
    return [SimpleNamespace(id=n, family_name=rng.choice(FAMILIES), date_of_birth=rng.choice(BIRTHS),
                            postcode=rng.choice(POSTCODES), updated_at=start + timedelta(hours=rng.randrange(3)))
            for n in range(count)]


def test_the_best_results_are_those_of_scoring_every_candidate():
    rng = random.Random(11)
    shown = 0
    for _ in range(500):
        keys = normalised_keys(rng.choice(FAMILIES + [None]), rng.choice(BIRTHS), rng.choice(POSTCODES))
        if keys.given < 2:
            continue
        entries, limit = _entries(rng, rng.randrange(0, 150)), rng.choice([1, 5, 50])
        expected = every_entry_scored(keys, entries, limit)
        assert _best(keys, entries, limit) == expected, keys
        shown += len(expected)
    assert shown > 1000  # the cases compared are not empty ones


def test_the_bound_is_difflibs_quick_ratio_and_never_below_the_ratio():
    rng = random.Random(4)
    for _ in range(20000):
        a, b = ("".join(rng.choice("abcéo12 -") for _ in range(rng.randrange(10))) for _ in range(2))
        matcher = difflib.SequenceMatcher(None, a, b)
        assert ratio_bound(a, b) == matcher.quick_ratio() >= matcher.ratio()
    assert ratio_bound("smith", "smyth") >= NAME_SIMILARITY
