"""Authorization matrix cases for the family pages: see tests/test_authorization_matrix.py.

The world's consented child (episode "given") and the child whose consent is not yet asked ("none")
form a family with one adult. The family is seen by whoever may open one of its children's CAFs
(VIEW of "given" and "none"); it is changed by the authority's administrator and by the originator,
lead professional or a team member of an open CAF they may open: the contributor sees but may not
change (403). Anyone else gets 404, as for a family that does not exist; roles without CAFs 403.
"""
from __future__ import annotations

from app.clock import now
from app.models import AdultRelationship, Episode, Family, FamilyAdult, FamilyChild

MISSING = 999999


def seed(runtime, world: dict) -> None:
    with runtime.db.session() as session:
        family = Family(family_name="Child", address="1 Test Road", postcode="TE1 1ST", created_at=now())
        session.add(family)
        session.flush()
        for state in ("given", "none"):
            child_id = session.get(Episode, world["episodes"][state]).child_id
            session.add(FamilyChild(family_id=family.id, child_id=child_id, added_at=now()))
        adult = FamilyAdult(family_id=family.id, name="Pat Parent", created_at=now())
        session.add(adult)
        session.flush()
        given_child = session.get(Episode, world["episodes"]["given"]).child_id
        session.add(AdultRelationship(adult_id=adult.id, child_id=given_child, relationship_to_child="Mother",
                                      parental_responsibility=True))
        world["family"] = {"id": family.id, "adult": adult.id}


def cases(world: dict, ids: dict, rules) -> dict:
    Case, ANONYMOUS, ADMINS, PRACTITIONERS, VIEW = (rules.Case, rules.ANONYMOUS, rules.ADMINS, rules.PRACTITIONERS,
                                                    rules.VIEW)
    family, adult = world["family"]["id"], world["family"]["adult"]
    seers = VIEW["given"] | VIEW["none"]
    changers = seers - {"contributor"}

    def rule(allowed: set[str], ok: int = 200, seen: set[str] = frozenset()):
        """`allowed` get `ok`; those who only see the family 403; other practitioners and
        administrators 404; roles without CAFs 403; anonymous users sign in."""
        def expect(actor: str) -> int:
            if actor == ANONYMOUS:
                return 302
            if actor not in ADMINS | PRACTITIONERS:
                return 403
            if actor in allowed:
                return ok
            return 403 if actor in seen else 404
        return expect

    base = f"/families/{family}"
    return {
        "families.show": [Case("GET", base, rule(seers)), Case("GET", f"/families/{MISSING}", rule(set()))],
        "families.add_adult": [Case("GET", f"{base}/adults/new", rule(changers, seen=seers)),
                               Case("POST", f"{base}/adults/new", rule(changers, 400, seers), {}),
                               Case("POST", f"/families/{MISSING}/adults/new", rule(set()), {})],
        "families.edit_adult": [Case("GET", f"{base}/adults/{adult}", rule(changers, seen=seers)),
                                Case("POST", f"{base}/adults/{adult}", rule(changers, 400, seers), {}),
                                Case("GET", f"{base}/adults/{MISSING}", rule(set(), seen=seers - changers))],
        # A missing adult: nothing to remove (the seeded one stays for the other actors' cases).
        "families.remove_adult": [Case("POST", f"{base}/adults/{MISSING}/remove", rule(set(), seen=seers - changers),
                                       {}),
                                  Case("POST", f"/families/{MISSING}/adults/{adult}/remove", rule(set()), {})],
        "families.add_child": [Case("GET", f"{base}/children/new", rule(changers, seen=seers)),
                               Case("POST", f"{base}/children/new", rule(changers, 400, seers), {})],
    }
