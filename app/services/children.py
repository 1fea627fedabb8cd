"""Finding a child before starting a CAF, and recording children to start their episodes.

A search looks in two places: records the user may open (through the policy), and the national
index, asked exactly as *Is there a CAF?* would be (same matching, same visibility, audited with the
reason "starting a CAF"). Whether anyone else holds a CAF, and who, is learnt only through the
index: a CAF the index does not show to this user (no entry yet, consent withdrawn, a shielded
child) is reported as "may already exist", naming nobody, which is also what stops a second one.

The NHS number comes first: a child holding the number searched for is the child, whatever the
name, birthday or postcode; a child holding another number is another child. A number is recorded
once (the database's unique constraint refuses a second record, however close together they come).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import audit, nhs_number, policy
from app.audit_lists import episodes_shown
from app.clock import now
from app.models import Authority, Child, Episode, OPEN_STATUSES, User
from app.services import family_changes

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}$")
INDEX_REASON = "starting a CAF"
# The same words whatever the reason the index is silent, so they give nothing away.
MAY_EXIST = "A CAF may already exist for this child: contact the eCAF administrator"


def normalise_postcode(value: str | None) -> str | None:
    text = re.sub(r"\s+", "", (value or "").upper())
    if not text:
        return None
    return f"{text[:-3]} {text[-3:]}" if len(text) > 3 else text


def valid_postcode(value: str | None) -> bool:
    return value is None or bool(POSTCODE.match(value))


@dataclass
class Criteria:
    given_names: str = ""
    family_name: str = ""
    date_of_birth: date | None = None
    postcode: str | None = None
    nhs_number: str | None = None


@dataclass
class VisibleMatch:
    child: Child
    episode: Episode | None
    by_nhs_number: bool = False  # the child holds the NHS number searched for


@dataclass
class SearchResult:
    visible: list[VisibleMatch] = field(default_factory=list)
    index: list = field(default_factory=list)  # national_index.IndexResult, open CAFs only
    may_exist: bool = False  # an open CAF matches that the index does not show this user

    @property
    def number_held(self) -> bool:
        """A child the user may see holds the NHS number searched for, and has an open CAF."""
        return any(m.by_nhs_number and m.episode is not None and m.episode.is_open for m in self.visible)

    @property
    def blocking(self) -> bool:
        """An open episode exists for a matching child (the one holding the number searched for
        included): another child must not be recorded."""
        return (any(m.episode is not None and m.episode.is_open for m in self.visible) or self.may_exist
                or any(r.match == "exact" for r in self.index))


def _same_name(column, value: str):
    return func.lower(func.trim(column)) == value.strip().lower()


def _index_look_up(session: Session, user: User, criteria: Criteria, *, episode_id: int | None = None) -> list:
    from app.services import national_index  # it imports this module's postcode rules
    return national_index.search(session, user, given_names=criteria.given_names, family_name=criteria.family_name,
                                 date_of_birth=criteria.date_of_birth, postcode=criteria.postcode,
                                 nhs_number=criteria.nhs_number, reason=INDEX_REASON, open_only=True,
                                 episode_id=episode_id, page="start_a_caf")


def _by_details(criteria: Criteria):
    """Children with these details; when a number is searched for, not those holding another one."""
    found = [_same_name(Child.family_name, criteria.family_name)]
    if criteria.date_of_birth:
        found.append(Child.date_of_birth == criteria.date_of_birth)
    if criteria.postcode:
        found.append(Child.postcode == criteria.postcode)
    if criteria.given_names.strip():
        found.append(_same_name(Child.given_names, criteria.given_names))
    found.append(nhs_number.not_another(Child.nhs_number, criteria.nhs_number))
    return found


def search(session: Session, user: User, criteria: Criteria) -> SearchResult:
    result = SearchResult()
    wanted = _by_details(criteria)
    if criteria.nhs_number:
        wanted = [or_(Child.nhs_number == criteria.nhs_number, and_(*wanted))]
    matches = session.scalars(select(Child).where(*wanted).limit(50)).all()
    # The child holding the number outranks any matching on name, birthday or postcode.
    def holds_number(child: Child) -> bool:
        return bool(criteria.nhs_number) and child.nhs_number == criteria.nhs_number

    matches = sorted(matches, key=lambda c: not holds_number(c))
    visible_ids = set(session.scalars(select(Child.id).where(Child.id.in_([c.id for c in matches]),
                                                             policy.child_filter(user))))
    result.index = _index_look_up(session, user, criteria)
    in_index = {r.episode_id for r in result.index}
    for child in matches:
        episode = _latest_episode(session, child.id)
        if child.id in visible_ids:
            result.visible.append(VisibleMatch(child, episode, by_nhs_number=holds_number(child)))
        elif episode is not None and episode.is_open and episode.id not in in_index:
            result.may_exist = True
        # A child holding the number whose CAFs are closed may have a new one: recording them again with
        # the number, their family name and date of birth starts it on their record (returning()).
    episodes_shown(session, user.id, "start_a_caf", [m.episode.id for m in result.visible if m.episode],
                   action="child_search", matches=len(matches), visible=len(result.visible),
                   index=len(result.index), may_exist=result.may_exist, by_nhs_number=bool(criteria.nhs_number))
    return result


def refusal(session: Session, user: User, existing: Episode, criteria: Criteria) -> str:
    """Why another CAF cannot start for this child, naming only whom the index would name to this user.

    A CAF the user may open is theirs to find; otherwise the index is asked about this very
    episode (and the look-up audited); when it does not show it, nobody is named."""
    name = f"{criteria.given_names} {criteria.family_name}"
    if policy.visible_episode(session, user, existing.id) is not None:
        return f"A CAF is already open for {name} ({existing.reference}): open it instead of starting another"
    found = _index_look_up(session, user, criteria, episode_id=existing.id)
    if not found:
        return MAY_EXIST
    contact = found[0].contact
    return (f"A CAF is already open for {name}: contact {contact['name']} "
            f"({contact['organisation'] or contact['role'] or 'eCAF'}) on {contact['phone'] or contact['email']} "
            "instead of starting another")


@dataclass
class NewChild:
    given_names: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None
    address: str | None
    nhs_number: str | None = None
    nhs_number_missing: str | None = None  # a key of app.nhs_number.MISSING_REASONS


class NhsNumberTaken(ValueError):
    """Another record took the NHS number between the check and the insert: the database refused."""


def already_open(session: Session, child: NewChild) -> Episode | None:
    """An open episode for a child with the same name and date of birth (and no other NHS number), if any."""
    if child.date_of_birth is None:
        return None
    same = [_same_name(Child.family_name, child.family_name), _same_name(Child.given_names, child.given_names),
            Child.date_of_birth == child.date_of_birth]
    same.append(nhs_number.not_another(Child.nhs_number, child.nhs_number))
    return session.scalar(
        select(Episode).join(Child, Child.id == Episode.child_id)
        .where(*same, Episode.status.in_(OPEN_STATUSES)).limit(1))


def holder_of(session: Session, number: str) -> Child | None:
    """The child recorded with this NHS number, if any."""
    return session.scalar(select(Child).where(Child.nhs_number == number))


def returning(session: Session, user: User, holder: Child, child: NewChild) -> bool:
    """Whether the child recorded with this NHS number comes back for a new CAF on their own record:
    none of their CAFs is open, the family name and date of birth typed are theirs, and the user's own
    authority held one of their CAFs (a child known elsewhere moves only by a transfer, with consent and
    a release: their record and history are that authority's). The record itself is not changed."""
    if holder.shielded:  # whose record may change, and who may see it, is the administrator's to decide
        return False
    if holder.date_of_birth != child.date_of_birth or _folded(holder.family_name) != _folded(child.family_name):
        return False
    episodes = select(Episode.id).where(Episode.child_id == holder.id)
    if session.scalar(episodes.where(Episode.status.in_(OPEN_STATUSES)).limit(1)) is not None:
        return False
    return session.scalar(episodes.where(policy.held_here_clause(user, Episode.authority_id),
                                         Episode.status != "deleted").limit(1)) is not None


def _folded(name: str | None) -> str:
    return " ".join((name or "").split()).casefold()


def _latest_episode(session: Session, child_id: int) -> Episode | None:
    return session.scalar(select(Episode).where(Episode.child_id == child_id, Episode.status != "deleted")
                          .order_by(Episode.started_at.desc()).limit(1))


def number_refusal(session: Session, user: User, holder: Child, child: NewChild) -> str:
    """Why a child cannot be recorded with an NHS number already held, naming only what this user may
    know: the child and their CAF when the user may open it; otherwise whom the index names (asked about
    an open CAF of the holder, and audited); otherwise nobody."""
    number = nhs_number.formatted(holder.nhs_number)
    # Each refusal is kept: a number tried by someone who may not see its child is worth an eye.
    audit.record(session, "nhs_number_refused", actor_id=user.id, child_id=holder.id, nhs_number=holder.nhs_number)
    episode = _latest_episode(session, holder.id)
    if episode is not None and policy.visible_episode(session, user, episode.id) is not None:
        if not episode.is_open:  # the number is theirs, but the name or date of birth typed is not
            return (f"{holder.display_name} is already recorded with NHS number {number} ({episode.reference}, "
                    "closed): check the family name and date of birth, which must be theirs to start a new CAF")
        return (f"{holder.display_name} is already recorded with NHS number {number} ({episode.reference}): "
                "open their CAF instead of recording them again")
    if episode is not None and episode.is_open:
        asked = Criteria(child.given_names, child.family_name, child.date_of_birth, child.postcode, holder.nhs_number)
        found = _index_look_up(session, user, asked, episode_id=episode.id)
        if found:
            contact = found[0].contact
            return (f"A CAF is already open for the child with NHS number {number}: contact {contact['name']} "
                    f"({contact['organisation'] or contact['role'] or 'eCAF'}) on "
                    f"{contact['phone'] or contact['email']} instead of recording them again")
    return f"NHS number {number} cannot be used for a new record: check it, or contact the eCAF administrator"


def _holder_locked(session: Session, number: str | None) -> Child | None:
    """The child holding `number`, locked against a CAF being started for them at the same moment."""
    if not number:
        return None
    return session.scalar(select(Child).where(Child.nhs_number == number).with_for_update())


def start_for(runtime, user: User, children: list[NewChild], authority_id: int,
              family: family_changes.FamilyJoin | None = None) -> list[int]:
    """Record the children and start one episode each, linked as siblings when there are several. The
    children form a family, or join `family` (PermissionError, nothing recorded, when it is not the
    user's to add to)."""
    group = uuid.uuid4().hex if len(children) > 1 else None
    records, returned = [], []
    with runtime.db.session() as session:
        if session.get(Authority, authority_id) is None:
            raise ValueError("choose the local authority where the child lives")
        for new in children:
            holder = _holder_locked(session, new.nhs_number)
            # The account as it is in this transaction: the caller's copy may be detached.
            if holder is not None and returning(session, session.get(User, user.id), holder, new):
                # A new CAF for a child whose CAFs here are all closed: their one record, as it is.
                returned.append(holder)
                audit.record(session, "child_returned", actor_id=user.id, child_id=holder.id, sibling_group=group,
                             nhs_number=holder.nhs_number, typed={"given_names": new.given_names,
                                                                 "address": new.address, "postcode": new.postcode})
                continue
            record = Child(given_names=new.given_names.strip(), family_name=new.family_name.strip(),
                           date_of_birth=new.date_of_birth, postcode=new.postcode, address=new.address,
                           nhs_number=new.nhs_number, nhs_number_missing=new.nhs_number_missing,
                           home_authority_id=authority_id, created_at=now())
            session.add(record)
            try:
                session.flush()
            except IntegrityError as exc:  # the whole recording is rolled back: no sibling is left half-made
                if new.nhs_number and "nhs_number" in str(exc.orig):
                    raise NhsNumberTaken(new.nhs_number) from exc
                raise
            records.append(record)
            audit.record(session, "child_recorded", actor_id=user.id, child_id=record.id, sibling_group=group,
                         nhs_number_missing=new.nhs_number_missing)
        unplaced = records + [c for c in returned if not family_changes.in_a_family(session, c.id)]
        if unplaced:
            family_changes.place_new_children(session, user, unplaced, family)
        child_ids = [c.id for c in records + returned]
    return [runtime.engine.start_episode(child_id=child_id, originator_id=user.id, sibling_group=group).episode_id
            for child_id in child_ids]
