"""Start a CAF for another child in a family: which family the record form was opened for (the hidden
`family` or `sibling_of` field), what it offers, and the adults as the practitioner left them.

The family's name, address and postcode and its adults are offered; consent never is (each child's
CAF asks for its own). A family the user may not add a child to is refused with one message, whether
it exists or not, and the refusal is audited.
"""
from __future__ import annotations

from app import audit
from app.services import families
from app.services.family_changes import RELATIONSHIP_LIMIT, FamilyJoin
from app.web.access import current_user
from app.web.form_input import text

REFUSED = ("You cannot start a CAF in this family: open the family from a CAF you work on as its lead "
           "professional, originator or a team member")


def source(form) -> FamilyJoin | None:
    """The family the form names, if any (ids only, nothing checked yet)."""
    family, sibling = form.get("family", ""), form.get("sibling_of", "")
    if not family and not sibling:
        return None
    return FamilyJoin(family_id=int(family) if family.isdigit() else -1 if family else None,
                      episode_id=int(sibling) if sibling.isdigit() else -1 if sibling else None)


def offered(session, join: FamilyJoin | None) -> families.SiblingPrefill | None:
    if join is None:
        return None
    offer = families.sibling_prefill(session, current_user(), family_id=join.family_id, episode_id=join.episode_id)
    if offer is None:
        audit.record(session, "access_denied", actor_id=current_user().id, asked_for="start a CAF in a family",
                     family_id=join.family_id, episode_id_given=join.episode_id)
    else:  # the family's address and adults are shown on the form
        audit.record(session, "family_details_offered", actor_id=current_user().id, family_id=offer.family_id,
                     episode_id=offer.episode_id, adults=[adult.id for adult in offer.adults])
    return offer


def fill(form, rows: list[dict], offer: families.SiblingPrefill) -> dict:
    """The record form's values with the family's details where nothing was typed."""
    values = form.to_dict()
    for name, value in (("address", offer.address), ("postcode", offer.postcode),
                        ("authority", str(offer.authority_id or ""))):
        if not values.get(name):
            values[name] = value or ""
    for row in rows:
        row["family_name"] = row["family_name"] or offer.family_name
    return values


def adults_as_typed(form, offer: families.SiblingPrefill) -> list[dict]:
    """Each offered adult with the relationship to the new child as last typed (or as offered)."""
    typed = form.get("adults_shown") == "yes"
    return [{"id": adult.id, "name": adult.name,
             "relationship": text(form, f"adult-{adult.id}-relationship", RELATIONSHIP_LIMIT) if typed
             else adult.relationship,
             "responsible": form.get(f"adult-{adult.id}-pr") == "yes" if typed else adult.parental_responsibility}
            for adult in offer.adults]


def join_for(form, offer: families.SiblingPrefill, join: FamilyJoin) -> FamilyJoin:
    join.adults = {adult["id"]: (adult["relationship"], adult["responsible"])
                   for adult in adults_as_typed(form, offer)}
    return join
