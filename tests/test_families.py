"""The family: children recorded together form one, its page shows each user only the children whose
CAFs they may open, its adults are added and changed by those working with the family, and a child
already with a CAF joins it. Grouping the task list and a sibling's new CAF: tests/test_family_starts.py."""
from __future__ import annotations

from sqlalchemy import func, select

from app.models import AdultRelationship, AuditEvent, Child, EpisodeMember, Family, FamilyAdult, FamilyChild
from app.services import family_changes
from tests.conftest import other_authority
from tests.family_helpers import episode_of, family_of, record_twins, signed_in
from tests.journeys import start
from tests.web import browser, give_credentials, text_of


def _count(runtime, model, *where) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _audited(runtime, action, **detail) -> list[dict]:
    with runtime.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
        return [r.detail or {} for r in rows if all((r.detail or {}).get(k) == v for k, v in detail.items())]


def test_children_recorded_together_form_one_family_with_their_address(web):
    runtime = web["runtime"]
    twins = record_twins(web)
    assert twins["family"] is not None and family_of(runtime, twins["bo"].child_id) == twins["family"]
    with runtime.db.session() as session:
        family = session.get(Family, twins["family"])
        assert (family.family_name, family.address, family.postcode) == ("Twin", "3 Pair Road", "W2 5RS")
    assert _audited(runtime, "family_recorded", family_id=twins["family"])
    # A child recorded alone has a family of one: their brothers and sisters can join it later.
    assert _count(runtime, Family) == 1


def test_the_family_page_shows_each_user_only_the_children_they_may_open(web):
    runtime = web["runtime"]
    twins = record_twins(web)
    path = f"/families/{twins['family']}"
    olive = text_of(signed_in(web).get(path))
    assert "Ada Twin" in olive and "Bo Twin" in olive and twins["bo"].reference in olive

    # Leah works on Ada's CAF only: Bo is not there at all, not his name, nor his CAF, nor a hint of him.
    leah = signed_in(web, "lead", "leah").get(path)
    page = text_of(leah)
    assert leah.status_code == 200 and "Ada Twin" in page and twins["ada"].reference in page
    assert "Bo" not in page and twins["bo"].reference not in page
    # The Team Around the Family: the members of the CAFs she may open.
    assert "Leah Lead" in page and "Olive Origin" in page and "Team Around the Child for Ada Twin" in page
    viewed = _audited(runtime, "family_viewed", family_id=twins["family"])
    assert viewed[-1]["episodes"] == [twins["ada"].id]

    # The authority's administrator sees both; another authority's sees nothing, and the asking is kept.
    admin = text_of(signed_in(web, "admin", "adam").get(path))
    assert "Bo Twin" in admin and "Add a parent or carer" in admin
    assert "Start a CAF for another child" not in admin, "Start a CAF is a practitioner's page"
    elsewhere = other_authority(runtime)
    otto = browser(web["app"])
    otto.sign_in("otto", give_credentials(runtime, elsewhere["otto"]))
    assert otto.get(path).status_code == 404
    assert otto.get("/families/999999").status_code == 404
    denied = _audited(runtime, "access_denied")
    assert any("family" in d.get("asked_for", "") for d in denied)


def test_the_episode_page_leads_to_the_family(web):
    twins = record_twins(web)
    page = signed_in(web, "lead", "leah").get(f"/episodes/{twins['ada'].id}").get_data(as_text=True)
    assert f'href="/families/{twins["family"]}"' in page


def test_adults_need_a_name_and_a_relationship_and_are_shown_only_as_related_to_visible_children(web):
    runtime = web["runtime"]
    twins = record_twins(web)
    ada, bo, family = twins["ada"].child_id, twins["bo"].child_id, twins["family"]
    olive = signed_in(web)
    path = f"/families/{family}/adults/new"

    nameless = olive.post(path, {f"relationship-{ada}": "Mother"})
    assert nameless.status_code == 400 and "Enter the adult's full name" in text_of(nameless)
    assert 'value="Mother"' in nameless.get_data(as_text=True), "what was typed is kept"
    unrelated = olive.post(path, {"name": "Pat Twin"})
    assert unrelated.status_code == 400 and "Enter how the adult is related" in text_of(unrelated)
    assert _count(runtime, FamilyAdult) == 0

    added = olive.post(path, {"name": "Pat Twin", f"relationship-{ada}": "Mother", f"responsible-{ada}": "yes",
                              f"relationship-{bo}": "Mother", f"responsible-{bo}": "yes"})
    assert added.status_code == 302
    olive.post(path, {"name": "Sam Stepdad", f"relationship-{bo}": "Stepfather"})
    assert _audited(runtime, "family_adult_added", family_id=family)

    page = text_of(olive.get(f"/families/{family}"))
    assert "Pat Twin" in page and "To Bo Twin Mother, has parental responsibility" in page and "Sam Stepdad" in page
    # Leah sees Pat only as Ada's mother, and nothing of Sam, who is related to Bo alone.
    leah = signed_in(web, "lead", "leah")
    page = text_of(leah.get(f"/families/{family}"))
    assert "Pat Twin" in page and "To Ada Twin Mother" in page and "Bo" not in page and "Sam Stepdad" not in page

    with runtime.db.session() as session:
        pat = session.scalar(select(FamilyAdult.id).where(FamilyAdult.name == "Pat Twin"))
        sam = session.scalar(select(FamilyAdult.id).where(FamilyAdult.name == "Sam Stepdad"))
    # Leah may change Pat (as related to Ada): Pat's relationship to Bo, which she cannot see, is kept.
    changed = leah.post(f"/families/{family}/adults/{pat}", {"name": "Pat Twin-Jones", f"relationship-{ada}": "Mother",
                                                             f"relationship-{bo}": "Aunt"})
    assert changed.status_code == 302
    with runtime.db.session() as session:
        links = dict(session.execute(select(AdultRelationship.child_id, AdultRelationship.relationship_to_child)
                                     .where(AdultRelationship.adult_id == pat)).all())
    assert links == {ada: "Mother", bo: "Mother"}
    # Sam is no adult of hers to see or change: as if he did not exist, and the asking is kept.
    assert leah.get(f"/families/{family}/adults/{sam}").status_code == 404
    assert leah.post(f"/families/{family}/adults/{sam}", {"name": "Forged"}).status_code == 404
    with runtime.db.session() as session:
        assert session.get(FamilyAdult, sam).name == "Sam Stepdad"
    blank = leah.post(f"/families/{family}/adults/{pat}", {"name": "", f"relationship-{ada}": ""})
    assert blank.status_code == 400 and "Enter the adult's full name" in text_of(blank)
    assert "Enter how the adult is related" in text_of(blank)

    # Removing Pat from Leah's side ends Pat's tie to Ada only; Bo's mother stays recorded.
    assert leah.post(f"/families/{family}/adults/{sam}/remove", {}, token_from="/").status_code == 404
    assert leah.post(f"/families/{family}/adults/{pat}/remove", {}, token_from="/").status_code == 302
    with runtime.db.session() as session:
        links = dict(session.execute(select(AdultRelationship.child_id, AdultRelationship.relationship_to_child)
                                     .where(AdultRelationship.adult_id == pat)).all())
    assert links == {bo: "Mother"}
    assert 'data-testid="family-adult"' not in leah.get(f"/families/{family}").get_data(as_text=True)
    assert _audited(runtime, "family_adult_removed", adult_id=pat)
    # Olive, who sees both children, removes Sam altogether.
    assert olive.post(f"/families/{family}/adults/{sam}/remove", {}, token_from="/").status_code == 302
    assert _count(runtime, FamilyAdult, FamilyAdult.id == sam) == 0


def test_only_those_working_with_the_family_may_change_it(web):
    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    family = twins["family"]
    elsewhere = other_authority(runtime, "eve")
    eve = browser(web["app"])
    eve.sign_in("eve", give_credentials(runtime, elsewhere["eve"]))
    for path in (f"/families/{family}", f"/families/{family}/adults/new", f"/families/{family}/children/new"):
        assert eve.get(path).status_code == 404
    assert eve.post(f"/families/{family}/adults/new", {"name": "Forged", "relationship-1": "Mother"},
                    token_from="/account").status_code == 404
    assert _count(runtime, FamilyAdult) == 0
    # A contributor sees the family through the CAF but does not change it.
    with runtime.db.session() as session:
        member = session.scalar(select(EpisodeMember).where(EpisodeMember.episode_id == twins["ada"].id,
                                                            EpisodeMember.user_id == people["lead"]))
        member.role = "contributor"
    leah = signed_in(web, "lead", "leah")
    assert leah.get(f"/families/{family}").status_code == 200
    assert "Add a parent or carer" not in text_of(leah.get(f"/families/{family}"))
    assert leah.get(f"/families/{family}/adults/new").status_code == 403


def test_a_child_with_a_caf_of_their_own_joins_the_family_by_its_reference(web):
    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    family = twins["family"]
    start(runtime, people)  # Casey's CAF was started on its own, before families
    casey_episode = episode_of(runtime, "Casey")
    olive = signed_in(web)
    path = f"/families/{family}/children/new"

    empty = olive.post(path, {"reference": ""})
    assert empty.status_code == 400 and "Enter the reference of the child's CAF" in text_of(empty)
    # Forged or someone else's references: one message, nothing changed, the attempt kept.
    elsewhere = other_authority(runtime, "eve")
    with runtime.db.session() as session:
        hidden = Child(given_names="Hidden", family_name="Else", home_authority_id=elsewhere["authority"],
                       created_at=casey_episode.started_at)
        session.add(hidden)
        session.flush()
        hidden_id = hidden.id
    hidden_episode = runtime.engine.start_episode(child_id=hidden_id, originator_id=elsewhere["eve"]).episode_id
    for forged in ("TST-999999", f"OTH-{hidden_episode:06d}", f"TST-{hidden_episode:06d}", "nonsense"):
        refused = olive.post(path, {"reference": forged})
        assert refused.status_code == 400 and "a CAF you work on" in text_of(refused), forged
        assert f'value="{forged}"' in refused.get_data(as_text=True)
    assert family_of(runtime, hidden_id) is None
    assert len(_audited(runtime, "access_denied", family_id=family)) == 4

    joined = olive.post(path, {"reference": casey_episode.reference.lower()})
    assert joined.status_code == 302 and family_of(runtime, people["child"]) == family
    assert _audited(runtime, "family_child_added", family_id=family, child_id=people["child"])
    again = olive.post(path, {"reference": casey_episode.reference})
    assert again.status_code == 400 and "already in this family" in text_of(again)
    assert "Casey Child" in text_of(olive.get(f"/families/{family}"))


def test_forgetting_a_deleted_child_forgets_adults_left_unrelated_and_an_empty_family(web):
    runtime = web["runtime"]
    twins = record_twins(web)
    ada, bo, family = twins["ada"].child_id, twins["bo"].child_id, twins["family"]
    olive = signed_in(web)
    olive.post(f"/families/{family}/adults/new", {"name": "Pat Twin", f"relationship-{ada}": "Mother",
                                                  f"relationship-{bo}": "Mother"})
    olive.post(f"/families/{family}/adults/new", {"name": "Sam Stepdad", f"relationship-{bo}": "Stepfather"})
    with runtime.db.session() as session:
        family_changes.forget_child(session, bo)
    with runtime.db.session() as session:
        assert session.scalars(select(FamilyAdult.name)).all() == ["Pat Twin"]
        assert session.scalar(select(func.count()).select_from(FamilyChild)) == 1
    with runtime.db.session() as session:
        family_changes.forget_child(session, ada)
    assert _count(runtime, Family) == 0 and _count(runtime, FamilyAdult) == 0


def test_subject_access_holds_the_childs_family_and_its_adults_as_related_to_that_child(web):
    from app.models import User
    from app.services import episode_transfer as transfer

    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    ada, bo, family = twins["ada"].child_id, twins["bo"].child_id, twins["family"]
    olive = signed_in(web)
    olive.post(f"/families/{family}/adults/new", {"name": "Pat Twin", f"relationship-{ada}": "Mother",
                                                  f"responsible-{ada}": "yes"})
    olive.post(f"/families/{family}/adults/new", {"name": "Sam Stepdad", f"relationship-{bo}": "Stepfather"})
    with runtime.db.session() as session:
        held = transfer.subject_access(session, session.get(Child, ada), session.get(User, people["admin"]))
    assert held["family"]["address"] == "3 Pair Road"
    assert held["family"]["adults"] == [{"name": "Pat Twin", "phone": None, "relationship": "Mother",
                                         "parental_responsibility": True}]


def test_deleting_a_childs_caf_takes_their_place_in_the_family_and_adults_only_related_to_them(web):
    from app.engine import repair

    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    ada, bo, family = twins["ada"].child_id, twins["bo"].child_id, twins["family"]
    olive = signed_in(web)
    olive.post(f"/families/{family}/adults/new", {"name": "Pat Twin", f"relationship-{ada}": "Mother",
                                                  f"relationship-{bo}": "Mother"})
    olive.post(f"/families/{family}/adults/new", {"name": "Sam Stepdad", f"relationship-{bo}": "Stepfather"})
    repair.delete_now(runtime.engine, twins["bo"].id, people["admin"], "Created by mistake")
    with runtime.db.session() as session:
        assert session.scalars(select(FamilyChild.child_id)).all() == [ada]
        assert session.scalars(select(FamilyAdult.name)).all() == ["Pat Twin"]
        assert session.scalar(select(func.count()).select_from(AdultRelationship)) == 1
    page = text_of(olive.get(f"/families/{family}"))
    assert "Ada Twin" in page and "Bo Twin" not in page
