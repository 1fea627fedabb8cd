"""A search request's best candidates are those of comparing every record in full, whatever is
skipped to find them sooner: the same records, in the same order, with the same labels."""
from __future__ import annotations

import difflib
import random
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

from app.services.children import normalise_postcode
from app.services.index_matching import NAME_SIMILARITY, folded_name, may_be_alike
from app.services.request_matching import Keys, best

LABELS = {"family_name": "family name", "given_names": "given names", "date_of_birth": "date of birth",
          "postcode": "postcode"}


# ---------------------------------------------------------------- the rule, spelt out plainly

def _name(asked: str, held: str) -> str | None:
    if not asked.strip():
        return None
    if "".join(asked.split()).casefold() == "".join(held.split()).casefold():
        return "exact"
    a, b = folded_name(asked), folded_name(held)
    if a == b or difflib.SequenceMatcher(None, a, b).ratio() >= NAME_SIMILARITY:
        return "close"
    return "close" if a and held.split() and a == folded_name(held.split()[0]) else None


def _birth(asked: date | None, held: date) -> str | None:
    if asked is None:
        return None
    if asked == held:
        return "exact"
    swapped = date(asked.year, asked.day, asked.month) if asked.day <= 12 and asked.day != asked.month else None
    return "close" if swapped == held else None


def _postcode(asked: str | None, held: str | None) -> str | None:
    held = normalise_postcode(held)
    if asked is None or held is None:
        return None
    if asked == held:
        return "exact"
    return "close" if asked.split(" ")[0] == held.split(" ")[0] else None


def every_record_compared(keys: Keys, records, limit: int) -> list[tuple]:
    found = []
    for record in records:
        how = {"family_name": _name(keys.family_name, record.family_name),
               "given_names": _name(keys.given_names, record.given_names),
               "date_of_birth": _birth(keys.date_of_birth, record.date_of_birth),
               "postcode": _postcode(keys.postcode, record.postcode)}
        if sum(v is not None for v in how.values()) < 2:
            continue
        asked = {"family_name": keys.family_name, "given_names": keys.given_names,
                 "date_of_birth": keys.date_of_birth, "postcode": keys.postcode}
        labels = {"exact": [LABELS[k] for k, v in how.items() if v == "exact"],
                  "close": [LABELS[k] for k, v in how.items() if v == "close"],
                  "differs": [LABELS[k] for k, v in how.items() if v is None and asked[k]]}
        found.append(((-len(labels["exact"]) - len(labels["close"]), -len(labels["exact"]),
                       record.status != "open", -record.started_at.timestamp()), record, labels))
    found.sort(key=lambda item: item[0])  # stable: ties keep the records' order
    return [(record, labels) for _, record, labels in found[:limit]]


# ---------------------------------------------------------------- records like a district's

# Alike enough for difflib's cheap bounds, some close and some not: Nowak/Novak, Amira/Maria, Leon/Noel.
FAMILIES = ["Smith", "Smyth", "Smithe", "O'Brien", "OBrien", "Obrién", "Brien", "Nowak", "Novak", "Nowakowska",
            "Lee", "Li", "Leigh", "Ahmed", "Ahmad", "Ahmedi", "Dahme", "de la Cruz", "Delacruz", "Cruz", "Zurc"]
GIVEN = ["Casey", "Casey Jo", "Kasey", "Jo", "Amira", "Amirah", "Mira", "Zoë", "Zoe", "Zo", "Anne-Marie",
         "Annemarie", "Ann Marie", "Maria", "Léa", "Lea", "Leah", "Leon", "Noel", "Lone", "  ", ""]
POSTCODES = ["W9 2AB", "W9 3CD", "w92ab", "W10 2AB", "SW1A 1AA", "SW1A 2BB", None]
BIRTHS = [date(2015, 3, 4), date(2015, 4, 3), date(2015, 3, 14), date(2016, 3, 4), date(2015, 5, 5)]


def _records(rng: random.Random, count: int) -> list:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    # Each record numbered, so two records alike in every key are still told apart.
    return [SimpleNamespace(number=n, family_name=rng.choice(FAMILIES), given_names=rng.choice(GIVEN),
                            date_of_birth=rng.choice(BIRTHS), postcode=rng.choice(POSTCODES),
                            status=rng.choice(["open", "open", "closed"]),
                            # Few distinct times, so records often tie on everything but their order.
                            started_at=start + timedelta(days=rng.randrange(4)))
            for n in range(count)]


def _keys(rng: random.Random) -> Keys:
    return Keys(given_names=rng.choice(GIVEN), family_name=rng.choice(FAMILIES),
                date_of_birth=rng.choice(BIRTHS + [None]), postcode=normalise_postcode(rng.choice(POSTCODES)))


def test_the_best_candidates_are_those_of_comparing_every_record_in_full():
    rng = random.Random(18)
    shown = 0
    for _ in range(400):
        records, keys, limit = _records(rng, rng.randrange(0, 120)), _keys(rng), rng.choice([0, 1, 5, 20])
        expected = every_record_compared(keys, records, limit)
        assert best(keys, records, limit) == expected, keys
        shown += len(expected)
    assert shown > 1000  # the cases compared are not empty ones


def test_a_first_name_alone_or_a_misspelling_is_close_and_a_blank_name_differs():
    born = date(2015, 3, 4)
    records = [SimpleNamespace(family_name="Smyth", given_names="Casey Jo", date_of_birth=born, postcode=None,
                               status="open", started_at=datetime(2026, 1, 1, tzinfo=timezone.utc))]
    [(_, labels)] = best(Keys("Casey", "Smith", born, None), records, 20)
    assert labels == {"exact": ["date of birth"], "close": ["family name", "given names"], "differs": []}
    [(_, labels)] = best(Keys("  ", "Smith", born, None), records, 20)
    assert labels == {"exact": ["date of birth"], "close": ["family name"], "differs": ["given names"]}


def test_the_cheap_test_of_two_names_agrees_with_difflibs_upper_bounds():
    rng = random.Random(5)
    letters = "abcéo12 -"
    for _ in range(20000):
        a, b = ("".join(rng.choice(letters) for _ in range(rng.randrange(10))) for _ in range(2))
        matcher = difflib.SequenceMatcher(None, a, b)
        bounded = matcher.real_quick_ratio() >= NAME_SIMILARITY and matcher.quick_ratio() >= NAME_SIMILARITY
        assert may_be_alike(a, b) == bounded, (a, b)
