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

Notices received from other systems (an assessment like a CAF held in a council's or a health system,
app/services/notice_matching.py) are matched by the same rule and ranked with the entries; each result
says its source. Start a CAF, asking about eCAF's own CAFs, leaves them out.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from app import policy
from app.audit_lists import episodes_shown
from app.models import Authority, Child, Episode, IndexEntry, User
from app.services import notice_matching, shielding
from app.services.children import normalise_postcode
from app.services.index_matching import BY_NHS_NUMBER, Keys, _best, candidates, district
from app.services.notice_matching import ECAF, NOTICE_KIND, Source
from app.services.query_plans import plan_for_values

MAX_RESULTS = 50
MAX_NOTICES = 10  # notices received shown beside the CAFs, at most
CONTACT_FIELDS = ("name", "role", "organisation", "phone", "email")


class IndexSearchRefused(PermissionError):
    """The user may not search the index (not vetted, or a role without the need)."""


class SearchInvalid(ValueError):
    """The search lacks a reason or enough keys; `problems` maps "reason" / "keys" to messages."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


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
    source: Source = ECAF  # or a notice another system sent: not an eCAF CAF, no way into it
    notice_id: int | None = None  # for the audit row only


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


def _query(user: User, keys: Keys, *, open_only: bool = False, episode_id: int | None = None):
    """The candidates' keys only: a national search compares hundreds of entries to show a few."""
    query = (
        select(IndexEntry.id, IndexEntry.family_name, IndexEntry.date_of_birth, IndexEntry.postcode,
               IndexEntry.nhs_number, IndexEntry.updated_at, notice_matching.IS_ENTRY)
        .join(Episode, Episode.id == IndexEntry.episode_id)
        .outerjoin(Child, Child.id == IndexEntry.child_id)
        # Withdrawn consent stops sharing: the index no longer points to that CAF.
        .where(candidates(keys, IndexEntry), Episode.status != "deleted", Episode.consent_state != "withdrawn",
               shielding.not_shielded_for(user))
    )
    if open_only:
        query = query.where(IndexEntry.status == "open")
    if episode_id is not None:
        query = query.where(IndexEntry.episode_id == episode_id)
    return query


def _matches(session: Session, user: User, keys: Keys, **narrowing) -> list[tuple]:
    """The best MAX_RESULTS matches, each as (match, IndexEntry or ReceivedNotice, authority name, shielded,
    home authority id, source).

    The index is searched with B-tree indexes, not trigram or phonetic ones: two of the three keys must
    match, so every result matches the date of birth (or its swap) or the postcode district, which
    indexes find by equality or prefix on PostgreSQL and SQLite alike; the family name is then compared
    here, on those few hundred candidates, with the same rule as ever. A name index would only help a
    search on the name alone, which the rule forbids."""
    plan_for_values(session)
    query = _query(user, keys, **narrowing)
    if not any(narrowing.values()):  # narrowed, the search asks about eCAF's own CAFs only
        # One statement: a search finding no notice costs no more round trips than before there were any.
        query = union_all(query, notice_matching.query(keys, user))
    rows = session.execute(query).all()
    # CAFs and notices are ranked apart, then together: however many notices clients send, and however
    # well they match, they take MAX_NOTICES places at most and never push a CAF out of the results.
    winners = ([row for _, row in _best(keys, [r for r in rows if not r.notice], MAX_RESULTS)]
               + [row for _, row in _best(keys, [r for r in rows if r.notice], MAX_NOTICES)])
    best = [(match, ("notice" if row.notice else "entry", row.id))
            for match, row in _best(keys, winners, MAX_RESULTS + MAX_NOTICES)]
    if not best:
        return []
    entry_ids = [found for _, (kind, found) in best if kind == "entry"]
    details = {("entry", entry.id): (entry, authority, bool(shielded), home, ECAF)
               for entry, authority, shielded, home in
               session.execute(select(IndexEntry, Authority.name, Child.shielded, Child.home_authority_id)
                               .join(Authority, Authority.id == IndexEntry.authority_id)
                               .outerjoin(Child, Child.id == IndexEntry.child_id)
                               .where(IndexEntry.id.in_(entry_ids)))} if entry_ids else {}
    details.update({("notice", notice_id): (notice, authority, shielded, None, source)
                    for notice_id, (notice, authority, shielded, source) in notice_matching.shown(
                        session, [found for _, (kind, found) in best if kind == "notice"]).items()})
    return [(match, *details[key]) for match, key in best if key in details]


def search(session: Session, user: User, *, given_names: str | None, family_name: str | None,
           date_of_birth: date | None, postcode: str | None, reason: str | None, open_only: bool = False,
           episode_id: int | None = None, page: str = "index_search",
           nhs_number: str | None = None) -> list[IndexResult]:
    """Index entries (and notices received) matching the keys, exact ones first. Audited in the caller's
    transaction.

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
                   shielded_shown=sum(r.shielded for r in results),
                   notices=[r.notice_id for r in results if r.notice_id is not None], **(audited or {}))
    return results


def _result(user: User, match, entry, authority: str, shielded: bool, home_authority_id: int | None,
            source: Source) -> IndexResult:
    kind, why, rank = match
    notice = source.kind == NOTICE_KIND  # a ReceivedNotice: no child record here, no episode
    child_id, episode_id = (None, None) if notice else (entry.child_id, entry.episode_id)
    manages = child_id is not None and policy.is_administrator_of(user, home_authority_id)
    # Found by the number alone, the child's other details are not the searcher's to learn.
    by_number = rank == BY_NHS_NUMBER
    return IndexResult(
        match=kind, near_because=why if kind == "near" else (), family_name="" if by_number else entry.family_name,
        date_of_birth=None if by_number else entry.date_of_birth,
        postcode_district=None if by_number else district(normalise_postcode(entry.postcode)),
        home_authority=authority, status="open" if entry.status == "open" else "closed",
        last_updated=entry.updated_at, contact={k: (entry.contact or {}).get(k) for k in CONTACT_FIELDS},
        shielded=shielded, shielding_child_id=child_id if manages else None, episode_id=episode_id,
        by_nhs_number=by_number, source=source, notice_id=entry.id if notice else None)


def _criteria(given_names: str | None, keys: Keys) -> dict:
    criteria = {"given_names": (given_names or "").strip() or None, "family_name": keys.family_name,
                "date_of_birth": keys.date_of_birth.isoformat() if keys.date_of_birth else None,
                "postcode": keys.postcode, "nhs_number": keys.nhs_number}
    return {key: value for key, value in criteria.items() if value}
