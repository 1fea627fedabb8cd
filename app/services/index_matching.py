"""Comparing a search's keys with an index entry's, and ranking the matches: one rule for the national
index, the notices received from other systems and the search requests (see national_index)."""
from __future__ import annotations

import bisect
import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sqlalchemy import or_

from app import nhs_number
from app.services.children import normalise_postcode

NAME_SIMILARITY = 0.8  # difflib ratio at which two family names count as the same name misspelt

@dataclass(frozen=True)
class Keys:
    """The search keys, normalised for comparison."""
    family_name: str | None
    date_of_birth: date | None
    postcode: str | None
    nhs_number: str | None = None

    @property
    def details(self) -> int:
        """How many of the three compared keys were given."""
        return sum(value is not None for value in (self.family_name, self.date_of_birth, self.postcode))

    @property
    def given(self) -> int:
        return self.details + (self.nhs_number is not None)


# ---------------------------------------------------------------- comparing keys

# Both are asked of the same names again and again (the name searched for, against every candidate):
# they depend on the text alone, so answers are kept (bounded).
@lru_cache(maxsize=8192)
def exact_name(value: str) -> str:
    return re.sub(r"\s+", "", value).casefold()


@lru_cache(maxsize=8192)
def folded_name(value: str) -> str:
    """The name without case, accents, spaces, hyphens or apostrophes: "O'Brién-Smith" -> "obriensmith"."""
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in letters.casefold() if c.isalnum())


def district(postcode: str | None) -> str | None:
    """The outward code ("W9" of "W9 2AB"): an area of a few thousand homes, not an address."""
    return postcode.split(" ")[0] if postcode else None


def swapped(born: date) -> date | None:
    """The date with day and month exchanged, when that is another real date."""
    if born.day == born.month or born.day > 12:
        return None
    return date(born.year, born.day, born.month)


@lru_cache(maxsize=8192)
def _letter_counts(name: str) -> tuple[tuple[str, int], ...]:
    return tuple((letter, name.count(letter)) for letter in dict.fromkeys(name))


def ratio_bound(a: str, b: str) -> float:
    """difflib's quick_ratio of two folded names, an upper bound of its ratio from the letters they
    share, worked out without building its matcher (which indexes every letter of the second name first)."""
    length = len(a) + len(b)
    if not length:
        return 1.0  # two empty names: difflib's ratio is 1.0
    shared = sum(min(count, b.count(letter)) for letter, count in _letter_counts(a))
    return 2.0 * shared / length


def may_be_alike(a: str, b: str) -> bool:
    """False when difflib's cheap upper bounds of the ratio of two folded names (its real_quick_ratio
    from their lengths, then its quick_ratio) are below NAME_SIMILARITY."""
    length = len(a) + len(b)
    if length and 2.0 * min(len(a), len(b)) / length < NAME_SIMILARITY:
        return False
    return ratio_bound(a, b) >= NAME_SIMILARITY


def name_ratio(a: str, b: str, *, only_if_alike: bool = False) -> float:
    """difflib's ratio of two folded names. `only_if_alike`: 0.0 as soon as difflib's cheap upper
    bounds show it is below NAME_SIMILARITY, for a caller that needs only a close name."""
    if only_if_alike and not may_be_alike(a, b):
        return 0.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def _compare_name(searched: str | None, indexed: str, *, needed: bool = False) -> tuple[str | None, float]:
    """("exact" | "close" | None, similarity). With `needed`, the caller wants only a close name:
    difflib's cheap upper bounds turn most strangers away before its full comparison."""
    if searched is None:
        return None, 0.0
    if exact_name(searched) == exact_name(indexed):
        return "exact", 1.0
    a, b = folded_name(searched), folded_name(indexed)
    if a == b:
        return "close", 1.0
    ratio = name_ratio(a, b, only_if_alike=needed)
    return ("close" if ratio >= NAME_SIMILARITY else None), ratio


def compare_birth(searched: date | None, indexed: date | None) -> str | None:
    if searched is None or indexed is None:
        return None
    if searched == indexed:
        return "exact"
    return "close" if swapped(searched) == indexed else None


def compare_postcode(searched: str | None, indexed: str | None) -> str | None:
    indexed = normalise_postcode(indexed)
    if searched is None or indexed is None:
        return None
    if searched == indexed:
        return "exact"
    return "close" if district(searched) == district(indexed) else None


NEAR_REASONS = {"family_name": "family name spelled differently", "date_of_birth": "day and month swapped",
                "postcode": "same postcode district"}
NHS_NUMBER_DIFFERS = "NHS number differs"
# The sort key of an entry holding the NHS number searched for: before any other.
BY_NHS_NUMBER = (False, -99, -99, -1.0)


def compare_nhs_number(keys: Keys, entry) -> str | None:
    return nhs_number.compare(keys.nhs_number, getattr(entry, "nhs_number", None))


def _score(keys: Keys, entry, compare_name=_compare_name) -> tuple[str, tuple[str, ...], tuple] | None:
    """("exact" | "near", why near, sort key) when the entry (anything with the three key attributes)
    matches, else None. `compare_name` may be a cached `_compare_name`."""
    nhs = compare_nhs_number(keys, entry)
    if nhs == "same":
        return "exact", (), BY_NHS_NUMBER
    birth = compare_birth(keys.date_of_birth, entry.date_of_birth)
    postcode = compare_postcode(keys.postcode, entry.postcode)
    others = (birth is not None) + (postcode is not None)
    if others == 0:
        return None  # the name alone is one key of the two needed
    name, similarity = compare_name(keys.family_name, entry.family_name, needed=others == 1)
    found = {"family_name": name, "date_of_birth": birth, "postcode": postcode}
    matching = [key for key, how in found.items() if how is not None]
    if len(matching) < 2:
        return None
    exact = sum(how == "exact" for how in found.values())
    kind = "exact" if exact == keys.details and nhs is None else "near"
    why = (NHS_NUMBER_DIFFERS,) if nhs == "differs" else ()
    why += tuple(NEAR_REASONS[key] for key, how in found.items() if how == "close")
    why += tuple(f"{label} differs" for key, label in (("family_name", "family name"),
                                                       ("date_of_birth", "date of birth"), ("postcode", "postcode"))
                 if found[key] is None and getattr(keys, key) is not None)
    return kind, why, (kind != "exact", -len(matching), -exact, -similarity)


def _hope(keys: Keys, entry) -> tuple | None:
    """The best sort key `_score` can give the entry, worked out without difflib's full comparison (a
    name spelt differently counts as close, as alike as difflib's upper bound allows); None when it
    cannot match. Never after the entry's real key, so entries decided in this order, until none left
    could rank above the last one kept, give the same best few as scoring every entry."""
    nhs = compare_nhs_number(keys, entry)
    if nhs == "same":
        return BY_NHS_NUMBER
    birth = compare_birth(keys.date_of_birth, entry.date_of_birth)
    postcode = compare_postcode(keys.postcode, entry.postcode)
    others = (birth is not None) + (postcode is not None)
    if others == 0:
        return None
    name, similarity = None, 0.0
    if keys.family_name is not None:
        if exact_name(keys.family_name) == exact_name(entry.family_name):
            name, similarity = "exact", 1.0
        else:
            a, b = folded_name(keys.family_name), folded_name(entry.family_name)
            similarity = 1.0 if a == b else ratio_bound(a, b)
            if others == 1 and similarity < NAME_SIMILARITY:
                return None  # not alike (so not close), and the other key alone is one of the two needed
            name = "close"
    matching = others + (name is not None)
    if matching < 2:
        return None
    exact = (birth == "exact") + (postcode == "exact") + (name == "exact")
    return (exact != keys.details or nhs is not None, -matching, -exact, -similarity)


def _best(keys: Keys, entries, limit: int) -> list[tuple]:
    """The best `limit` matches, best first, as (match, entry): by `_score`'s key, then eCAF's CAFs
    before notices received (a row's `notice` column: however many notices a client sends, and however
    lately, they never push a CAF as good out of the results), then the latest updated, then the order
    the entries came in."""
    # Family names repeat among candidates (a district's Smiths): each is compared with the one searched once.
    compare_name = lru_cache(maxsize=None)(_compare_name)
    hopes = []
    for position, entry in enumerate(entries):
        hope = _hope(keys, entry)
        if hope is not None:
            hopes.append(((hope, getattr(entry, "notice", 0), -entry.updated_at.timestamp(), position), entry))
    hopes.sort(key=lambda item: item[0])
    found: list[tuple] = []  # (key, match, entry), kept sorted and at most `limit` long
    for (hope, *rest), entry in hopes:
        if len(found) >= limit and (not found or found[-1][0] < (hope, *rest)):
            break  # no entry left can rank above the last one kept
        match = _score(keys, entry, compare_name)
        if match is not None:
            bisect.insort(found, ((match[2], *rest), match, entry), key=lambda item: item[0])
            del found[limit:]
    return [(match, entry) for _, match, entry in found]


def candidates(keys: Keys, table):
    """Rows of `table` (the index, or notices received) worth scoring. Every result holds the NHS number
    searched for or matches the date of birth or the postcode district closely (two of three keys must
    match), so these columns narrow the search in SQL."""
    near = [table.nhs_number == keys.nhs_number] if keys.nhs_number is not None else []
    if keys.date_of_birth is not None:
        births = [keys.date_of_birth] + [d for d in [swapped(keys.date_of_birth)] if d]
        near.append(table.date_of_birth.in_(births))
    if keys.postcode is not None:
        near.append(or_(table.postcode == keys.postcode,
                        table.postcode.startswith(f"{district(keys.postcode)} ", autoescape=True)))
    return or_(*near)

