"""How well a child record matches the keys a search request asks about, and the best few of them.

Four keys are compared (family name, given names, date of birth, postcode); a record needs two of them
matching, at least closely. Records are ranked by how many keys match, then how many exactly, open
CAFs first, newest first. Only the best few are shown, and comparing names is the costly part (difflib,
on hundreds of records a district or a birthday brings in), so a record's names are compared in full
only while it could still be among the best: everything but a close spelling is decided cheaply, a
close spelling can only add a "close" key, so assuming it gives an upper bound on the record's rank.
The result is the same as comparing every record in full.

An NHS number asked about comes first: a record holding it is a candidate whatever its other keys
and ranks above every other; a record holding another number is another child, ranked after those
that hold none.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date

from app import nhs_number
from app.services.index_matching import NAME_SIMILARITY, compare_birth, compare_postcode, exact_name, folded_name, \
    may_be_alike, name_ratio

LABELS = {"family_name": "family name", "given_names": "given names", "date_of_birth": "date of birth",
          "postcode": "postcode"}
UNDECIDED = "undecided"  # a name that only difflib's full comparison can tell close or not


@dataclass(frozen=True)
class Keys:
    given_names: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None
    nhs_number: str | None = None


class AskedName:
    """A name asked about, its forms worked out once; each name held is compared with it once a search
    (family names repeat among a district's records)."""

    def __init__(self, asked: str):
        self.blank = not asked.strip()
        self.exact = exact_name(asked)
        self.folded = folded_name(asked)
        self._cheap: dict[str, str | None] = {}
        self._full: dict[str, str | None] = {}

    def cheaply(self, held: str) -> str | None:
        """"exact", "close", None, or UNDECIDED when only the full comparison can tell."""
        if held not in self._cheap:
            self._cheap[held] = self._cheaply(held)
        return self._cheap[held]

    def _cheaply(self, held: str) -> str | None:
        if self.blank:
            return None
        if self.exact == exact_name(held):
            return "exact"
        b = folded_name(held)
        if self.folded == b:
            return "close"
        # A first name alone ("Casey" for "Casey Jo") is close, however the whole names compare (one word
        # alone folds as the whole name did).
        words = held.split()
        if len(words) > 1 and self.folded and self.folded == folded_name(words[0]):
            return "close"
        return UNDECIDED if may_be_alike(self.folded, b) else None

    def compared(self, held: str) -> str | None:
        """"exact", "close" or None: the same answer as comparing the two names in full."""
        how = self.cheaply(held)
        if how != UNDECIDED:
            return how
        if held not in self._full:
            self._full[held] = "close" if name_ratio(self.folded, folded_name(held)) >= NAME_SIMILARITY else None
        return self._full[held]


class Matcher:
    """The keys of one search, compared with records (anything with the child's key attributes)."""

    def __init__(self, keys: Keys):
        self.keys = keys
        self.names = {"family_name": AskedName(keys.family_name), "given_names": AskedName(keys.given_names)}
        self.asked = {"family_name": keys.family_name, "given_names": keys.given_names,
                      "date_of_birth": keys.date_of_birth, "postcode": keys.postcode}

    def cheaply(self, record) -> dict[str, str | None]:
        """For each key "exact", "close", None (no match, or not asked) or, for a name, UNDECIDED."""
        return {"family_name": self.names["family_name"].cheaply(record.family_name),
                "given_names": self.names["given_names"].cheaply(record.given_names),
                "date_of_birth": compare_birth(self.keys.date_of_birth, record.date_of_birth),
                "postcode": compare_postcode(self.keys.postcode, record.postcode)}

    def nhs_number(self, record) -> str | None:
        return nhs_number.compare(self.keys.nhs_number, getattr(record, "nhs_number", None))

    def decided(self, how: dict, record) -> dict[str, str | None]:
        return {key: self.names[key].compared(getattr(record, key)) if value == UNDECIDED else value
                for key, value in how.items()}

    def labelled(self, how: dict, nhs: str | None = None) -> dict | None:
        """{"exact": [...], "close": [...], "differs": [...]} by label, or None when fewer than two keys match
        (and the record does not hold the NHS number asked about)."""
        if sum(value is not None for value in how.values()) < 2 and nhs != "same":
            return None
        return {"exact": ["NHS number"] * (nhs == "same") + [LABELS[k] for k, v in how.items() if v == "exact"],
                "close": [LABELS[k] for k, v in how.items() if v == "close"],
                "differs": ["NHS number"] * (nhs == "differs")
                + [LABELS[k] for k, v in how.items() if v is None and self.asked[k]]}

    def compared(self, record) -> dict | None:
        """Every key compared in full: the labels, or None when fewer than two keys match."""
        return self.labelled(self.decided(self.cheaply(record), record), self.nhs_number(record))


TIERS = {"same": 0, None: 1, "differs": 2}  # by the NHS number: holding the one asked, none, another


def _rank(how: dict, record, position: int, nhs: str | None = None) -> tuple | None:
    """Best first: the NHS number asked about, then more keys matching, more exactly, open CAFs, newer; then
    the order the records came in. An UNDECIDED name counts as close, so for a record not yet decided this
    is the best it can rank. None when fewer than two keys match (and the record does not hold the number)."""
    values = how.values()
    matching = 4 - list(values).count(None)
    if matching < 2 and nhs != "same":
        return None
    return (TIERS[nhs], -matching, -list(values).count("exact"), record.status != "open",
            -record.started_at.timestamp(), position)


def best(keys: Keys, records, limit: int) -> list[tuple]:
    """The best `limit` records matching at least two keys, best first, each as (record, labels).
    `records` need the child's keys, the episode's status and started_at."""
    if limit <= 0:
        return []
    matcher = Matcher(keys)
    hopes = []
    for position, record in enumerate(records):
        how, nhs = matcher.cheaply(record), matcher.nhs_number(record)
        hoped = _rank(how, record, position, nhs)
        if hoped is not None:
            hopes.append((hoped, how, nhs, record))
    hopes.sort(key=lambda hope: hope[0])
    found: list[tuple] = []  # (rank, labels, record), kept sorted and at most `limit` long
    for hoped, how, nhs, record in hopes:
        if len(found) == limit and found[-1][0] < hoped:
            break  # no record left can rank above the last one kept
        if UNDECIDED in how.values():
            how = matcher.decided(how, record)
        labels = matcher.labelled(how, nhs)
        if labels is not None:
            bisect.insort(found, (_rank(how, record, hoped[-1], nhs), labels, record), key=lambda item: item[0])
            del found[limit:]
    return [(record, labels) for _, labels, record in found]
