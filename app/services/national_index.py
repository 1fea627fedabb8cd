"""Searching the national index: does a CAF exist for this child, and whom should I ask? (N11)

Any vetted practitioner or administrator may search, stating why (ContactPoint's rule); every
search is audited with its reason, criteria and number of results. A result says that a CAF exists,
where, and whom to contact: never what it holds, the child's address, the episode or a link to it.

Matching works on three keys: family name, date of birth and postcode. Each key matches exactly,
closely or not at all; a result needs at least two keys matching closely, and is exact when every
key searched on matches exactly. The index holds no given names, so they are recorded with the
search but do not narrow it.

The NHS number, when searched for, outranks them all: an entry holding it is an exact result
whatever its other keys, and comes first; an entry holding another number is another child, at
best a near result. It is one of the two keys a search needs, and never shown in a result.
"""
from __future__ import annotations

import bisect
import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import nhs_number, policy
from app.audit_lists import episodes_shown
from app.models import Authority, Child, Episode, IndexEntry, User
from app.services import shielding
from app.services.children import normalise_postcode
from app.services.query_plans import plan_for_values

NAME_SIMILARITY = 0.8  # difflib ratio at which two family names count as the same name misspelt
MAX_RESULTS = 50
CONTACT_FIELDS = ("name", "role", "organisation", "phone", "email")


class IndexSearchRefused(PermissionError):
    """The user may not search the index (not vetted, or a role without the need)."""


class SearchInvalid(ValueError):
    """The search lacks a reason or enough keys; `problems` maps "reason" / "keys" to messages."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


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


@dataclass(frozen=True)
class IndexResult:
    """What the index may tell a searcher about one CAF: existence and contact, nothing else."""
    match: str  # "exact" or "near"
    near_because: tuple[str, ...]
    family_name: str
    date_of_birth: date | None
    postcode_district: str | None
    home_authority: str
    status: str  # "open" or "closed"
    last_updated: datetime
    contact: dict
    shielded: bool
    # Set only for an administrator of the child's home authority, who may change the shield.
    shielding_child_id: int | None = None
    # For the audit row only: pages never show it (the index gives no way into the CAF).
    episode_id: int | None = None
    by_nhs_number: bool = False  # the entry holds the NHS number searched for


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
    """The best `limit` matches, best first, as (match, entry): by `_score`'s key, then the latest
    updated, then the order the entries came in."""
    # Family names repeat among candidates (a district's Smiths): each is compared with the one searched once.
    compare_name = lru_cache(maxsize=None)(_compare_name)
    hopes = []
    for position, entry in enumerate(entries):
        hope = _hope(keys, entry)
        if hope is not None:
            hopes.append(((hope, -entry.updated_at.timestamp(), position), entry))
    hopes.sort(key=lambda item: item[0])
    found: list[tuple] = []  # (key, match, entry), kept sorted and at most `limit` long
    for (hope, newest, position), entry in hopes:
        if len(found) >= limit and (not found or found[-1][0] < (hope, newest, position)):
            break  # no entry left can rank above the last one kept
        match = _score(keys, entry, compare_name)
        if match is not None:
            bisect.insort(found, ((match[2], newest, position), match, entry), key=lambda item: item[0])
            del found[limit:]
    return [(match, entry) for _, match, entry in found]


# ---------------------------------------------------------------- the search

def normalised_keys(family_name: str | None, date_of_birth: date | None, postcode: str | None,
                    nhs_number: str | None = None) -> Keys:
    """`nhs_number` already checked (app.nhs_number): ten digits or None."""
    return Keys(family_name=(family_name or "").strip() or None, date_of_birth=date_of_birth,
                postcode=normalise_postcode(postcode), nhs_number=nhs_number or None)


def problems(keys: Keys, reason: str | None) -> dict[str, str]:
    """What stops this search from running, as messages for the form (empty when it may run)."""
    found = {}
    why = shielding.reason_problem(reason, "searching the index")
    if why:
        found["reason"] = why
    if keys.given < 2:
        found["keys"] = "Enter at least two of: NHS number, family name, date of birth, postcode"
    return found


def _candidates(keys: Keys):
    """Entries worth scoring. Every result holds the NHS number searched for or matches the date of
    birth or the postcode district closely (two of three keys must match), so these columns narrow the
    search in SQL."""
    near = [IndexEntry.nhs_number == keys.nhs_number] if keys.nhs_number is not None else []
    if keys.date_of_birth is not None:
        births = [keys.date_of_birth] + [d for d in [swapped(keys.date_of_birth)] if d]
        near.append(IndexEntry.date_of_birth.in_(births))
    if keys.postcode is not None:
        near.append(or_(IndexEntry.postcode == keys.postcode,
                        IndexEntry.postcode.startswith(f"{district(keys.postcode)} ", autoescape=True)))
    return or_(*near)


def _query(user: User, keys: Keys, *, open_only: bool = False, episode_id: int | None = None):
    """The candidates' keys only: a national search compares hundreds of entries to show a few."""
    query = (
        select(IndexEntry.id, IndexEntry.family_name, IndexEntry.date_of_birth, IndexEntry.postcode,
               IndexEntry.nhs_number, IndexEntry.updated_at)
        .join(Episode, Episode.id == IndexEntry.episode_id)
        .outerjoin(Child, Child.id == IndexEntry.child_id)
        # Withdrawn consent stops sharing: the index no longer points to that CAF.
        .where(_candidates(keys), Episode.status != "deleted", Episode.consent_state != "withdrawn",
               shielding.not_shielded_for(user))
    )
    if open_only:
        query = query.where(IndexEntry.status == "open")
    if episode_id is not None:
        query = query.where(IndexEntry.episode_id == episode_id)
    return query


def _matches(session: Session, user: User, keys: Keys, **narrowing) -> list[tuple]:
    """The best MAX_RESULTS matches, each as (match, IndexEntry, authority name, shielded, home authority id).

    The index is searched with B-tree indexes, not trigram or phonetic ones: two of the three keys must
    match, so every result matches the date of birth (or its swap) or the postcode district, which
    indexes find by equality or prefix on PostgreSQL and SQLite alike; the family name is then compared
    here, on those few hundred candidates, with the same rule as ever. A name index would only help a
    search on the name alone, which the rule forbids."""
    plan_for_values(session)
    best = [(match, candidate.id) for match, candidate in _best(keys, session.execute(_query(user, keys, **narrowing)),
                                                                  MAX_RESULTS)]
    if not best:
        return []
    details = {entry.id: (entry, authority, bool(shielded), home) for entry, authority, shielded, home in
               session.execute(select(IndexEntry, Authority.name, Child.shielded, Child.home_authority_id)
                               .join(Authority, Authority.id == IndexEntry.authority_id)
                               .outerjoin(Child, Child.id == IndexEntry.child_id)
                               .where(IndexEntry.id.in_([entry_id for _, entry_id in best])))}
    return [(match, *details[entry_id]) for match, entry_id in best if entry_id in details]


def search(session: Session, user: User, *, given_names: str | None, family_name: str | None,
           date_of_birth: date | None, postcode: str | None, reason: str | None, open_only: bool = False,
           episode_id: int | None = None, page: str = "index_search",
           nhs_number: str | None = None) -> list[IndexResult]:
    """Index entries matching the keys, exact ones first. Audited in the caller's transaction.

    `open_only` leaves out closed CAFs and `episode_id` looks for one episode's entry only (Start a CAF
    asks about the CAF that stops it); what matches and who sees it is the same as any search."""
    if not policy.may_search_index(user):
        raise IndexSearchRefused(f"user {user.id if user else None} may not search the index")
    return answer(session, user, user.id, page, given_names=given_names, family_name=family_name,
                  date_of_birth=date_of_birth, postcode=postcode, nhs_number=nhs_number, reason=reason,
                  open_only=open_only, episode_id=episode_id)


def answer(session: Session, viewer: User | None, actor_id: int | None, page: str, *, given_names: str | None,
           family_name: str | None, date_of_birth: date | None, postcode: str | None, nhs_number: str | None,
           reason: str | None, audited: dict | None = None, **narrowing) -> list[IndexResult]:
    """What any asker the caller has let in gets: the keys and reason checked (SearchInvalid), the
    matches as `viewer` may see them (None: as a practitioner, no shielded child), the search audited as
    `page` with `audited` added to its detail."""
    keys = normalised_keys(family_name, date_of_birth, postcode, nhs_number)
    found = problems(keys, reason)
    if found:
        raise SearchInvalid(found)
    results = [_result(viewer, *row) for row in _matches(session, viewer, keys, **narrowing)]
    episodes_shown(session, actor_id, page, [r.episode_id for r in results], action="index_searched",
                   reason=reason.strip(), criteria=_criteria(given_names, keys), results=len(results),
                   exact=sum(r.match == "exact" for r in results), by_nhs_number=sum(r.by_nhs_number for r in results),
                   shielded_shown=sum(r.shielded for r in results), **(audited or {}))
    return results


def _result(user: User, match, entry: IndexEntry, authority: str, shielded: bool,
            home_authority_id: int | None) -> IndexResult:
    kind, why, rank = match
    manages = entry.child_id is not None and policy.is_administrator_of(user, home_authority_id)
    # Found by the number alone, the child's other details are not the searcher's to learn.
    by_number = rank == BY_NHS_NUMBER
    return IndexResult(
        match=kind, near_because=why if kind == "near" else (), family_name="" if by_number else entry.family_name,
        date_of_birth=None if by_number else entry.date_of_birth,
        postcode_district=None if by_number else district(normalise_postcode(entry.postcode)),
        home_authority=authority, status="open" if entry.status == "open" else "closed",
        last_updated=entry.updated_at, contact={k: (entry.contact or {}).get(k) for k in CONTACT_FIELDS},
        shielded=shielded, shielding_child_id=entry.child_id if manages else None, episode_id=entry.episode_id,
        by_nhs_number=by_number)


def _criteria(given_names: str | None, keys: Keys) -> dict:
    criteria = {"given_names": (given_names or "").strip() or None, "family_name": keys.family_name,
                "date_of_birth": keys.date_of_birth.isoformat() if keys.date_of_birth else None,
                "postcode": keys.postcode, "nhs_number": keys.nhs_number}
    return {key: value for key, value in criteria.items() if value}
