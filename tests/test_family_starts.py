"""A new CAF for another child of a family: offered the family's name, address and adults (never its
consent), refused for a family that is not the user's; and the task list grouped by family."""
from __future__ import annotations

from sqlalchemy import func, select

from app.models import AdultRelationship, AuditEvent, Consent, Episode, FamilyAdult, FamilyChild
from tests.family_helpers import episode_of, family_of, record_twins, signed_in
from tests.journeys import start
from tests.web import text_of

NEW_CHILD = {"count": "1", "child-0-given_names": "Cy", "child-0-date_of_birth-day": "3",
             "child-0-date_of_birth-month": "4", "child-0-date_of_birth-year": "2020",
             "child-0-nhs_number_missing": "not_known", "action": "start"}


def _count(runtime, model, *where) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _with_pat(web, twins) -> int:
    ada, bo, family = twins["ada"].child_id, twins["bo"].child_id, twins["family"]
    signed_in(web).post(f"/families/{family}/adults/new", {
        "name": "Pat Twin", f"relationship-{ada}": "Mother", f"responsible-{ada}": "yes",
        f"relationship-{bo}": "Mother", f"responsible-{bo}": "yes"})
    with web["runtime"].db.session() as session:
        return session.scalar(select(FamilyAdult.id).where(FamilyAdult.name == "Pat Twin"))


def test_a_sibling_caf_is_offered_the_family_details_and_adults_but_never_the_consent(web):
    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    family, pat = twins["family"], _with_pat(web, twins)
    olive = signed_in(web)
    assert "Start a CAF for another child in this family" in text_of(olive.get(f"/families/{family}"))

    offered = olive.post("/children/new", {"action": "prefill", "family": str(family)},
                         token_from=f"/families/{family}")
    html = offered.get_data(as_text=True)
    assert offered.status_code == 200 and 'value="Twin"' in html and "3 Pair Road" in html and 'value="W2 5RS"' in html
    assert f'name="adult-{pat}-relationship"' in html and 'value="Mother"' in html
    assert f'name="family" value="{family}"' in html and "Consent is asked for again" in text_of(offered)
    with runtime.db.session() as session:
        shown = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "family_details_offered")).all()
    assert shown and shown[-1]["family_id"] == family and shown[-1]["adults"] == [pat]

    # A mistake on the form keeps the family and the adults as typed.
    wrong = olive.post("/children/new", {**NEW_CHILD, "child-0-family_name": "Twin", "family": str(family),
                                         "address": "3 Pair Road", "postcode": "W2 5RS", "adults_shown": "yes",
                                         f"adult-{pat}-relationship": "Aunt",
                                         "authority": str(people["authority"]), "child-0-given_names": ""},
                       token_from="/children/find")
    assert wrong.status_code == 400 and 'value="Aunt"' in wrong.get_data(as_text=True)

    started = olive.post("/children/new", {**NEW_CHILD, "child-0-family_name": "Twin", "family": str(family),
                                           "address": "3 Pair Road", "postcode": "W2 5RS", "adults_shown": "yes",
                                           f"adult-{pat}-relationship": "Mother", f"adult-{pat}-pr": "yes",
                                           "authority": str(people["authority"])}, token_from="/children/find")
    assert started.status_code == 302, text_of(started)
    cy = episode_of(runtime, "Cy")
    assert family_of(runtime, cy.child_id) == family
    with runtime.db.session() as session:
        link = session.scalar(select(AdultRelationship).where(AdultRelationship.child_id == cy.child_id))
        assert (link.adult_id, link.relationship_to_child, link.parental_responsibility) == (pat, "Mother", True)
        # Consent stays with each child: Ada's was given, Cy's CAF starts without any.
        assert session.get(Episode, twins["ada"].id).consent_state == "given"
        assert session.get(Episode, cy.id).consent_state == "none"
    assert _count(runtime, Consent, Consent.episode_id == cy.id) == 0
    assert _count(runtime, Consent, Consent.episode_id == twins["ada"].id) == 1
    assert "Cy Twin" in text_of(olive.get(f"/families/{family}"))


def test_a_caf_started_before_families_offers_its_childs_details_and_starts_their_family(web):
    runtime, people = web["runtime"], web["people"]
    casey = start(runtime, people)
    assert family_of(runtime, people["child"]) is None
    olive = signed_in(web)
    page = olive.get(f"/episodes/{casey}")
    assert "Start a CAF for another child in this family" in text_of(page)
    offered = olive.post("/children/new", {"action": "prefill", "sibling_of": str(casey)},
                         token_from=f"/episodes/{casey}")
    html = offered.get_data(as_text=True)
    assert 'value="Child"' in html and "1 Test Road" in html and f'name="sibling_of" value="{casey}"' in html
    started = olive.post("/children/new", {**NEW_CHILD, "child-0-family_name": "Child", "sibling_of": str(casey),
                                           "address": "1 Test Road", "postcode": "TE1 1ST",
                                           "authority": str(people["authority"])}, token_from="/children/find")
    assert started.status_code == 302, text_of(started)
    family = family_of(runtime, people["child"])
    assert family is not None and family_of(runtime, episode_of(runtime, "Cy").child_id) == family


def test_a_family_that_is_not_the_users_is_refused_with_one_message_and_nothing_recorded(web):
    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    leah = signed_in(web, "lead", "leah")  # on Ada's team, so she may add to this family, but not to others
    other = start(runtime, people)  # Casey's CAF: olive's alone
    for forged in ({"family": "999999"}, {"family": "abc"}, {"sibling_of": str(other)},
                   {"sibling_of": str(twins["bo"].id)}):
        refused = leah.post("/children/new", {**NEW_CHILD, "child-0-family_name": "Twin", **forged,
                                              "address": "3 Pair Road", "postcode": "W2 5RS",
                                              "authority": str(people["authority"])}, token_from="/")
        assert refused.status_code == 400 and "You cannot start a CAF in this family" in text_of(refused), forged
        assert 'value="Cy"' in refused.get_data(as_text=True), "what was typed is kept"
    assert _count(runtime, Episode) == 3 and _count(runtime, FamilyChild) == 2
    with runtime.db.session() as session:
        denied = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "access_denied")).all()
    assert sum(1 for d in denied if d.get("asked_for") == "start a CAF in a family") >= 4
    # Through Ada's CAF, where she is on the team, Leah may.
    allowed = leah.post("/children/new", {"action": "prefill", "sibling_of": str(twins["ada"].id)},
                        token_from="/")
    assert allowed.status_code == 200 and 'value="3 Pair Road"' not in allowed.get_data(as_text=True)
    assert "3 Pair Road" in allowed.get_data(as_text=True)


def test_the_task_list_groups_brothers_and_sisters_keeping_its_order_and_filters(web):
    runtime, people = web["runtime"], web["people"]
    twins = record_twins(web)
    start(runtime, people)  # Casey Child: not in the Twins' family
    olive = signed_in(web)
    flat = olive.get("/")
    assert 'data-testid="task-group"' not in flat.get_data(as_text=True)
    grouped = olive.get("/?group=family")
    html = grouped.get_data(as_text=True)
    assert html.count('data-testid="task-group"') == 2
    assert 'id="group-family" name="group" type="checkbox" value="family" checked' in html
    page = text_of(grouped)
    assert "Family of " in page and "Bo Twin" in page and "Casey Child" in page
    # Ada's and Bo's tasks are in one table; Casey's in another.
    tables = html.split('data-testid="task-group"')[1:]
    twins_table = next(t for t in tables if "Ada Twin" in t)
    assert "Bo Twin" in twins_table and "Casey Child" not in twins_table
    assert f'href="/families/{twins["family"]}"' in twins_table
    # The filters still apply: only the tasks assigned to olive, still grouped.
    mine = olive.get("/?show=mine&group=family").get_data(as_text=True)
    assert 'value="mine" checked' in mine and mine.count('data-testid="task-group"') == 2
    # Leah is on Ada's team only: her list never names Bo.
    assert "Bo Twin" not in text_of(signed_in(web, "lead", "leah").get("/?group=family"))


def test_grouping_keeps_the_most_urgent_family_first_and_each_familys_own_order():
    from app.services.task_list import TaskRow, TaskRows, group_by_family

    def row(task_id, episode_id, name, family_id):
        return TaskRow(task_id, episode_id, f"TST-{episode_id:06d}", name, "assessment", "Task", None, False, False,
                       True, False, False, "open", family_id=family_id)

    rows = TaskRows([row(1, 10, "Ada Twin", 7), row(2, 30, "Casey Child", None), row(3, 20, "Bo Twin", 7),
                     row(4, 10, "Ada Twin", 7)])
    groups = group_by_family(rows)
    assert [g.children for g in groups] == [["Ada Twin", "Bo Twin"], ["Casey Child"]]
    assert [r.task_id for r in groups[0].rows] == [1, 3, 4]
