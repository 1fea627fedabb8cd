"""Changing a family: its adults, a child joining it, the family a new CAF's children form, and what
is forgotten with a child. Each change asks the policy inside its own transaction and is audited.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from app import audit, policy
from app.clock import now
from app.models import AdultRelationship, Child, Episode, Family, FamilyAdult, FamilyChild, User
from app.models.episode import episode_reference
from app.services import families

NAME_LIMIT, RELATIONSHIP_LIMIT, PHONE_LIMIT = 200, 100, 40
REFERENCE = re.compile(r"^\s*([A-Za-z]{2,10})-?0*(\d{1,9})\s*$")


@dataclass
class AdultForm:
    """An adult as typed: name, telephone and, for each child shown, the relationship and parental
    responsibility (a blank relationship: not related to that child)."""

    name: str = ""
    phone: str = ""
    links: dict[int, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class Outcome:
    errors: dict = field(default_factory=dict)
    adult_id: int | None = None

    @property
    def done(self) -> bool:
        return not self.errors


def _problems(form: AdultForm, children: dict[int, str]) -> dict:
    errors = {}
    if not form.name:
        errors["name"] = "Enter the adult's full name"
    elif len(form.name) > NAME_LIMIT:
        errors["name"] = f"The adult's name must be {NAME_LIMIT} characters or fewer"
    if len(form.phone) > PHONE_LIMIT:
        errors["phone"] = f"The telephone number must be {PHONE_LIMIT} characters or fewer"
    for child_id, (relationship, _) in form.links.items():
        if len(relationship) > RELATIONSHIP_LIMIT:
            errors[f"relationship-{child_id}"] = (f"The relationship to {children[child_id]} must be "
                                                   f"{RELATIONSHIP_LIMIT} characters or fewer")
    if not any(relationship for relationship, _ in form.links.values()) and children:
        first = next(iter(children))
        errors[f"relationship-{first}"] = "Enter how the adult is related to at least one of the children"
    return errors


def _visible_children(session: Session, user: User, family_id: int) -> dict[int, str]:
    return {view.child.id: view.child.display_name for view in families.visible_children(session, user, family_id)}


def save_adult(session: Session, user: User, family_id: int, form: AdultForm, adult_id: int | None = None) -> Outcome:
    """Add an adult to the family (adult_id None) or change one; the caller has checked the family is
    the user's to change, and is asked again here in this transaction."""
    if not policy.may_change_family(session, user, family_id):
        raise PermissionError("this family is not the user's to change")
    children = _visible_children(session, user, family_id)
    form.links = {child_id: link for child_id, link in form.links.items() if child_id in children}
    outcome = Outcome(_problems(form, children))
    if not outcome.done:
        return outcome
    moment = now()
    if adult_id is None:
        adult = FamilyAdult(family_id=family_id, name=form.name, phone=form.phone or None, created_at=moment,
                            created_by_id=user.id)
        session.add(adult)
        session.flush()
    else:
        adult = session.get(FamilyAdult, adult_id)
        if adult is None or adult.family_id != family_id:
            raise PermissionError("this adult is not of this family")
        adult.name, adult.phone, adult.updated_at = form.name, form.phone or None, moment
    existing = {link.child_id: link for link in session.scalars(select(AdultRelationship).where(
        AdultRelationship.adult_id == adult.id, AdultRelationship.child_id.in_(children)))}
    for child_id, (relationship, responsibility) in form.links.items():
        link = existing.get(child_id)
        if not relationship:
            if link is not None:
                session.delete(link)
        elif link is None:
            session.add(AdultRelationship(adult_id=adult.id, child_id=child_id, relationship_to_child=relationship,
                                          parental_responsibility=responsibility))
        else:
            link.relationship_to_child, link.parental_responsibility = relationship, responsibility
    audit.record(session, "family_adult_added" if adult_id is None else "family_adult_changed", actor_id=user.id,
                 family_id=family_id, adult_id=adult.id, children=sorted(form.links))
    outcome.adult_id = adult.id
    return outcome


def remove_adult(session: Session, user: User, family_id: int, adult: FamilyAdult) -> None:
    """Take the adult away from the children the user may see (recorded in error, or no longer
    caring for them); their ties to children the user cannot see are not the user's to end."""
    if not policy.may_change_family(session, user, family_id) or adult.family_id != family_id:
        raise PermissionError("this family is not the user's to change")
    children = _visible_children(session, user, family_id)
    session.execute(delete(AdultRelationship).where(AdultRelationship.adult_id == adult.id,
                                                    AdultRelationship.child_id.in_(children)))
    left = session.scalar(select(func.count()).select_from(AdultRelationship)
                          .where(AdultRelationship.adult_id == adult.id))
    if not left:
        session.delete(adult)
    audit.record(session, "family_adult_removed", actor_id=user.id, family_id=family_id, adult_id=adult.id,
                 children=sorted(children), forgotten=not left)


def adult_of(session: Session, user: User, family_id: int, adult_id: int) -> FamilyAdult | None:
    """The adult, if they belong to the family and are related to a child the user may see."""
    adult = session.get(FamilyAdult, adult_id)
    if adult is None or adult.family_id != family_id:
        return None
    children = _visible_children(session, user, family_id)
    related = session.scalar(select(exists().where(AdultRelationship.adult_id == adult_id,
                                                   AdultRelationship.child_id.in_(children))))
    return adult if related else None


def add_child(session: Session, user: User, family_id: int, reference: str) -> dict:
    """Put the child of the CAF `reference` in the family: errors by field, empty when done."""
    match = REFERENCE.match(reference or "")
    episode = session.get(Episode, int(match.group(2))) if match else None
    if not reference.strip():
        return {"reference": "Enter the reference of the child's CAF, like TST-000012"}
    if (episode is None or episode.child_id is None
            or episode.reference.upper() != episode_reference(match.group(1).upper(), episode.id)
            or policy.visible_episode(session, user, episode.id) is None
            or not policy.may_place_child(session, user, episode.child_id)):
        audit.record(session, "access_denied", actor_id=user.id, asked_for="add a child to a family",
                     family_id=family_id, reference=reference[:40])
        return {"reference": "Enter the reference of a CAF you work on, like TST-000012: you can add a child "
                             "only from a CAF where you are the lead professional, originator or on the team"}
    child = episode.child
    current = families.family_of_child(session, child.id)
    if current == family_id:
        return {"reference": f"{child.display_name} is already in this family"}
    if current is not None:
        return {"reference": f"{child.display_name} is already in another family: open it from their CAF"}
    session.add(FamilyChild(family_id=family_id, child_id=child.id, added_at=now(), added_by_id=user.id))
    audit.record(session, "family_child_added", actor_id=user.id, episode_id=episode.id, family_id=family_id,
                 child_id=child.id)
    return {}


# ---------------------------------------------------------------- new CAFs and deleted children

@dataclass
class FamilyJoin:
    """A new CAF's children join this family (or the family of this episode's child), with these adults
    (adult id: relationship and parental responsibility) related to each of them."""

    family_id: int | None = None
    episode_id: int | None = None
    adults: dict[int, tuple[str, bool]] = field(default_factory=dict)


def in_a_family(session: Session, child_id: int) -> bool:
    return session.scalar(select(FamilyChild.id).where(FamilyChild.child_id == child_id)) is not None


def place_new_children(session: Session, user: User, children: list[Child], join: FamilyJoin | None) -> int:
    """The family the newly recorded `children` form or join; returns its id. Consent is not touched:
    each child's episode asks for its own."""
    moment = now()
    if join is None:
        first = children[0]
        family = Family(family_name=first.family_name, address=first.address, postcode=first.postcode,
                        created_at=moment, created_by_id=user.id)
        session.add(family)
        session.flush()
        audit.record(session, "family_recorded", actor_id=user.id, family_id=family.id,
                     children=[c.id for c in children])
    else:
        offered = families.sibling_prefill(session, user, family_id=join.family_id, episode_id=join.episode_id)
        if offered is None:
            raise PermissionError("this family is not the user's to change")
        family = session.get(Family, offered.family_id) if offered.family_id else None
        if family is None:  # the sibling was recorded before families: theirs starts now
            sibling = session.get(Episode, join.episode_id).child
            family = Family(family_name=sibling.family_name, address=sibling.address, postcode=sibling.postcode,
                            created_at=moment, created_by_id=user.id)
            session.add(family)
            session.flush()
            session.add(FamilyChild(family_id=family.id, child_id=sibling.id, added_at=moment, added_by_id=user.id))
            audit.record(session, "family_recorded", actor_id=user.id, family_id=family.id, children=[sibling.id])
        allowed = {adult.id for adult in offered.adults}
        for adult_id, (relationship, responsibility) in join.adults.items():
            if adult_id in allowed and relationship:
                for child in children:
                    session.add(AdultRelationship(adult_id=adult_id, child_id=child.id,
                                                  relationship_to_child=relationship[:RELATIONSHIP_LIMIT],
                                                  parental_responsibility=responsibility))
    for child in children:
        session.add(FamilyChild(family_id=family.id, child_id=child.id, added_at=moment, added_by_id=user.id))
        audit.record(session, "family_child_added", actor_id=user.id, family_id=family.id, child_id=child.id)
    return family.id


def forget_child(session: Session, child_id: int) -> None:
    """Before a child's record is deleted: their place in the family goes, and so does an adult no
    longer related to any child, and a family with no child left (adults are personal data too)."""
    family_id = families.family_of_child(session, child_id)
    if family_id is None:
        return
    session.execute(delete(AdultRelationship).where(AdultRelationship.child_id == child_id))
    session.execute(delete(FamilyChild).where(FamilyChild.child_id == child_id))
    related = select(AdultRelationship.adult_id)
    session.execute(delete(FamilyAdult).where(FamilyAdult.family_id == family_id, FamilyAdult.id.not_in(related)))
    left = session.scalar(select(func.count()).select_from(FamilyChild).where(FamilyChild.family_id == family_id))
    if not left:
        session.execute(delete(FamilyAdult).where(FamilyAdult.family_id == family_id))
        session.execute(delete(Family).where(Family.id == family_id))

