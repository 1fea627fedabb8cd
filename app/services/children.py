"""Finding a child before starting a CAF, and recording children to start their episodes.

A search looks in two places: records the user may open (through the policy), and the national
index, asked exactly as *Is there a CAF?* would be (same matching, same visibility, audited with the
reason "starting a CAF"). Whether anyone else holds a CAF, and who, is learnt only through the
index: a CAF the index does not show to this user (no entry yet, consent withdrawn, a shielded
child) is reported as "may already exist", naming nobody, which is also what stops a second one.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, policy
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


@dataclass
class VisibleMatch:
    child: Child
    episode: Episode | None


@dataclass
class SearchResult:
    visible: list[VisibleMatch] = field(default_factory=list)
    index: list = field(default_factory=list)  # national_index.IndexResult, open CAFs only
    may_exist: bool = False  # an open CAF matches that the index does not show this user

    @property
    def blocking(self) -> bool:
        """An open episode exists for a matching child: another must not be started."""
        return (any(m.episode is not None and m.episode.is_open for m in self.visible) or self.may_exist
                or any(r.match == "exact" for r in self.index))


def _same_name(column, value: str):
    return func.lower(func.trim(column)) == value.strip().lower()


def _index_look_up(session: Session, user: User, criteria: Criteria, *, episode_id: int | None = None) -> list:
    from app.services import national_index  # it imports this module's postcode rules
    return national_index.search(session, user, given_names=criteria.given_names, family_name=criteria.family_name,
                                 date_of_birth=criteria.date_of_birth, postcode=criteria.postcode,
                                 reason=INDEX_REASON, open_only=True, episode_id=episode_id, page="start_a_caf")


def search(session: Session, user: User, criteria: Criteria) -> SearchResult:
    result = SearchResult()
    query = select(Child).where(_same_name(Child.family_name, criteria.family_name))
    if criteria.date_of_birth:
        query = query.where(Child.date_of_birth == criteria.date_of_birth)
    if criteria.postcode:
        query = query.where(Child.postcode == criteria.postcode)
    if criteria.given_names.strip():
        query = query.where(_same_name(Child.given_names, criteria.given_names))
    matches = session.scalars(query.limit(50)).all()
    visible_ids = set(session.scalars(select(Child.id).where(Child.id.in_([c.id for c in matches]),
                                                             policy.child_filter(user))))
    result.index = _index_look_up(session, user, criteria)
    in_index = {r.episode_id for r in result.index}
    for child in matches:
        episode = session.scalar(select(Episode).where(Episode.child_id == child.id, Episode.status != "deleted")
                                 .order_by(Episode.started_at.desc()).limit(1))
        if child.id in visible_ids:
            result.visible.append(VisibleMatch(child, episode))
        elif episode is not None and episode.is_open and episode.id not in in_index:
            result.may_exist = True
    episodes_shown(session, user.id, "start_a_caf", [m.episode.id for m in result.visible if m.episode],
                   action="child_search", matches=len(matches), visible=len(result.visible),
                   index=len(result.index), may_exist=result.may_exist)
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


def already_open(session: Session, child: NewChild) -> Episode | None:
    """An open episode for a child with the same name and date of birth, if any."""
    if child.date_of_birth is None:
        return None
    return session.scalar(
        select(Episode).join(Child, Child.id == Episode.child_id)
        .where(_same_name(Child.family_name, child.family_name), _same_name(Child.given_names, child.given_names),
               Child.date_of_birth == child.date_of_birth, Episode.status.in_(OPEN_STATUSES)).limit(1))


def start_for(runtime, user: User, children: list[NewChild], authority_id: int,
              family: family_changes.FamilyJoin | None = None) -> list[int]:
    """Record the children and start one episode each, linked as siblings when there are several. The
    children form a family, or join `family` (PermissionError, nothing recorded, when it is not the
    user's to add to)."""
    group = uuid.uuid4().hex if len(children) > 1 else None
    records = []
    with runtime.db.session() as session:
        if session.get(Authority, authority_id) is None:
            raise ValueError("choose the local authority where the child lives")
        for new in children:
            record = Child(given_names=new.given_names.strip(), family_name=new.family_name.strip(),
                           date_of_birth=new.date_of_birth, postcode=new.postcode, address=new.address,
                           home_authority_id=authority_id, created_at=now())
            session.add(record)
            session.flush()
            records.append(record)
            audit.record(session, "child_recorded", actor_id=user.id, child_id=record.id, sibling_group=group)
        family_changes.place_new_children(session, user, records, family)
        child_ids = [record.id for record in records]
    return [runtime.engine.start_episode(child_id=child_id, originator_id=user.id, sibling_group=group).episode_id
            for child_id in child_ids]
