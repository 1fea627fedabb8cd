"""Reading a family: its page (children, their CAFs, lead professionals, adults and the Team Around the
Family) and the details a brother's or sister's new CAF is offered.

Everything is read through the policy (app/policy/families.py): a child whose episodes the user may
not open is left out entirely, and so are an adult's relationships to that child. Every read is
audited, naming the episodes whose children it showed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import policy
from app.audit_lists import episodes_shown
from app.models import AdultRelationship, Child, Episode, Family, FamilyAdult, FamilyChild, User
from app.services import episode_record


@dataclass
class FamilyChildView:
    child: Child
    episodes: list[Episode]

    @property
    def current(self) -> Episode:
        """The CAF to show first: an open one, else the newest."""
        return next((e for e in self.episodes if e.is_open), self.episodes[0])


@dataclass
class Relationship:
    child_id: int
    child_name: str
    relationship: str
    parental_responsibility: bool


@dataclass
class AdultView:
    adult: FamilyAdult
    relationships: list[Relationship]


@dataclass
class TeamMember:
    name: str
    organisation: str | None
    job: str | None
    email: str | None
    phone: str | None
    parts: list[str] = field(default_factory=list)  # "Lead professional for Casey Child", ...


@dataclass
class FamilyView:
    family: Family
    children: list[FamilyChildView]
    adults: list[AdultView]
    team: list[TeamMember]
    may_change: bool
    may_start_caf: bool = False  # "Start a CAF for another child in this family"

    @property
    def episode_ids(self) -> list[int]:
        return [e.id for c in self.children for e in c.episodes]


def family_of_child(session: Session, child_id: int | None) -> int | None:
    if child_id is None:
        return None
    return session.scalar(select(FamilyChild.family_id).where(FamilyChild.child_id == child_id))


def visible_children(session: Session, user: User, family_id: int) -> list[FamilyChildView]:
    """The family's children with the episodes `user` may open, eldest first; the others not at all."""
    by_child: dict[int, FamilyChildView] = {}
    for episode in policy.visible_family_episodes(session, user, family_id):
        view = by_child.setdefault(episode.child_id, FamilyChildView(episode.child, []))
        view.episodes.append(episode)
    return sorted(by_child.values(), key=lambda c: (c.child.date_of_birth is None, c.child.date_of_birth, c.child.id))


def adults(session: Session, family_id: int, children: dict[int, str]) -> list[AdultView]:
    """The family's adults as related to `children` (id: name), the ones the user may see; an adult
    related to none of them is left out."""
    rows = session.execute(
        select(FamilyAdult, AdultRelationship).join(AdultRelationship, AdultRelationship.adult_id == FamilyAdult.id)
        .where(FamilyAdult.family_id == family_id, AdultRelationship.child_id.in_(children))
        .order_by(FamilyAdult.id, AdultRelationship.id)).all()
    found: dict[int, AdultView] = {}
    for adult, link in rows:
        view = found.setdefault(adult.id, AdultView(adult, []))
        view.relationships.append(Relationship(link.child_id, children[link.child_id], link.relationship_to_child,
                                               link.parental_responsibility))
    return list(found.values())


def _team(session: Session, children: list[FamilyChildView]) -> list[TeamMember]:
    """The union of the current members of the visible open episodes (the newest, when all are closed)."""
    team: dict[str, TeamMember] = {}
    for child in children:
        episodes = [e for e in child.episodes if e.is_open] or child.episodes[:1]
        for episode in episodes:
            for person in episode_record.people(session, episode):
                key = (person.email or person.name or "").lower()
                member = team.setdefault(key, TeamMember(person.name, person.organisation, person.job,
                                                         person.email, person.phone))
                member.parts.append(f"{person.role_in_episode} for {child.child.display_name}")
    return list(team.values())


def family_page(session: Session, user: User, family_id: int) -> FamilyView | None:
    """The family as `user` may see it (None: they may not see it at all), audited."""
    family = session.get(Family, family_id)
    if family is None or not policy.may_see_family(session, user, family_id):
        return None
    children = visible_children(session, user, family_id)
    view = FamilyView(family=family, children=children,
                      adults=adults(session, family_id, {c.child.id: c.child.display_name for c in children}),
                      team=_team(session, children), may_change=policy.may_change_family(session, user, family_id),
                      may_start_caf=policy.may_start_sibling_caf(session, user, family_id=family_id))
    episodes_shown(session, user.id, "family", view.episode_ids, action="family_viewed", family_id=family_id)
    return view


def family_held(session: Session, child_id: int) -> dict | None:
    """What a subject-access export holds of the child's family: its details and the adults as
    related to this child (not the brothers and sisters: their data is theirs)."""
    family_id = family_of_child(session, child_id)
    if family_id is None:
        return None
    family = session.get(Family, family_id)
    rows = session.execute(select(FamilyAdult, AdultRelationship)
                           .join(AdultRelationship, AdultRelationship.adult_id == FamilyAdult.id)
                           .where(AdultRelationship.child_id == child_id).order_by(FamilyAdult.id)).all()
    return {"id": family.id, "family_name": family.family_name, "address": family.address,
            "postcode": family.postcode,
            "adults": [{"name": adult.name, "phone": adult.phone, "relationship": link.relationship_to_child,
                        "parental_responsibility": link.parental_responsibility} for adult, link in rows]}


# ---------------------------------------------------------------- a brother's or sister's new CAF

@dataclass
class PrefillAdult:
    id: int
    name: str
    relationship: str
    parental_responsibility: bool


@dataclass
class SiblingPrefill:
    """What a new CAF for another child of the family is offered; consent is never among it."""

    family_id: int | None  # None: the sibling's child has no family yet (recorded before families)
    episode_id: int | None
    family_name: str
    address: str | None
    postcode: str | None
    authority_id: int | None
    adults: list[PrefillAdult] = field(default_factory=list)


def sibling_prefill(session: Session, user: User, *, family_id: int | None = None,
                    episode_id: int | None = None) -> SiblingPrefill | None:
    """The family's details for a new child, when `user` may add a child to it (else None)."""
    if episode_id is not None:
        episode = session.get(Episode, episode_id)
        if episode is None or episode.child is None or not policy.may_change_through(session, user, episode_id):
            return None
        family_id = family_of_child(session, episode.child_id)
        if family_id is None:
            child = episode.child
            return SiblingPrefill(None, episode_id, child.family_name, child.address, child.postcode,
                                  child.home_authority_id)
    if family_id is None or not policy.may_change_family(session, user, family_id):
        return None
    family = session.get(Family, family_id)
    children = {c.child.id: c.child.display_name for c in visible_children(session, user, family_id)}
    offered = [PrefillAdult(a.adult.id, a.adult.name, a.relationships[0].relationship,
                            any(r.parental_responsibility for r in a.relationships))
               for a in adults(session, family_id, children)]
    homes = session.scalars(select(Child.home_authority_id).join(FamilyChild, FamilyChild.child_id == Child.id)
                            .where(FamilyChild.family_id == family_id, Child.id.in_(children))).all()
    return SiblingPrefill(family_id, episode_id, family.family_name, family.address, family.postcode,
                          homes[0] if homes else None, offered)
