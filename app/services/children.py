"""Finding a child before starting a CAF, and recording children to start their episodes.

A search looks in two places: records the user may open (through the policy), and whether any CAF
is open for a child with these details anywhere (the national index and open episodes), which
reveals only that it exists and whom to contact, never the CAF itself. A shielded child's CAF is
left out of that second place for everyone but administrators.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.models import Authority, Child, Episode, IndexEntry, OPEN_STATUSES, User
from app.services import shielding

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}$")


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
class ContactMatch:
    """A CAF exists elsewhere: the authority and whom to contact, nothing more."""
    authority: str
    contact: dict
    open_episode: bool


@dataclass
class SearchResult:
    visible: list[VisibleMatch] = field(default_factory=list)
    elsewhere: list[ContactMatch] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        """An open episode exists for a matching child: another must not be started."""
        return any(m.episode is not None and m.episode.is_open for m in self.visible) or any(
            m.open_episode for m in self.elsewhere)


def _same_name(column, value: str):
    return func.lower(func.trim(column)) == value.strip().lower()


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
    seen_episodes = set()
    for child in matches:
        episode = session.scalar(select(Episode).where(Episode.child_id == child.id, Episode.status != "deleted")
                                 .order_by(Episode.started_at.desc()).limit(1))
        if child.id in visible_ids:
            result.visible.append(VisibleMatch(child, episode))
        elif episode is not None and episode.is_open and (not child.shielded or shielding.sees_shielded(user)):
            person = episode.lead_professional or episode.originator
            result.elsewhere.append(ContactMatch(episode.authority.name, person.contact(), True))
        if episode is not None:
            seen_episodes.add(episode.id)
    # The national index also knows CAFs whose child record this search did not match exactly.
    index_query = (select(IndexEntry).outerjoin(Child, Child.id == IndexEntry.child_id)
                   .where(_same_name(IndexEntry.family_name, criteria.family_name), IndexEntry.status == "open",
                          shielding.not_shielded_for(user)))
    if criteria.date_of_birth:
        index_query = index_query.where(IndexEntry.date_of_birth == criteria.date_of_birth)
    for entry in session.scalars(index_query.limit(50)):
        if entry.episode_id in seen_episodes:
            continue
        authority = session.get(Authority, entry.authority_id)
        result.elsewhere.append(ContactMatch(authority.name if authority else "", entry.contact, True))
    audit.record(session, "child_search", actor_id=user.id, matches=len(matches),
                 visible=len(result.visible), elsewhere=len(result.elsewhere))
    return result


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


def start_for(runtime, user: User, children: list[NewChild], authority_id: int) -> list[int]:
    """Record the children and start one episode each, linked as siblings when there are several."""
    group = uuid.uuid4().hex if len(children) > 1 else None
    child_ids = []
    with runtime.db.session() as session:
        if session.get(Authority, authority_id) is None:
            raise ValueError("choose the local authority where the child lives")
        for new in children:
            record = Child(given_names=new.given_names.strip(), family_name=new.family_name.strip(),
                           date_of_birth=new.date_of_birth, postcode=new.postcode, address=new.address,
                           home_authority_id=authority_id, created_at=now())
            session.add(record)
            session.flush()
            child_ids.append(record.id)
            audit.record(session, "child_recorded", actor_id=user.id, child_id=record.id, sibling_group=group)
    return [runtime.engine.start_episode(child_id=child_id, originator_id=user.id, sibling_group=group).episode_id
            for child_id in child_ids]
