"""Attacker's review of index notices: odd input never fails on PostgreSQL, and a notice's word is
taken only while its sender is trusted."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from app.clock import now
from tests.test_api_index import assert_problem, register
from tests.test_api_index_notices import NOTICE, api, search, send, stored  # noqa: F401 (fixture)


@pytest.mark.parametrize("field,value", [
    ("family_name", "\ud800"), ("given_names", "Ni\udfffa"), ("assessment", "\ud83d"),
    ("postcode", "\ud800"), ("nhs_number", "\ud800"),
])
def test_lone_surrogates_in_a_notice_are_400_naming_the_field(api, field, value):
    answer = send(api, body={**NOTICE, field: value})
    body = assert_problem(answer, 400)
    assert field in body["errors"]
    assert stored(api["runtime"]) == []


def test_a_lone_surrogate_in_the_contact_is_400_naming_the_field(api):
    answer = send(api, body={**NOTICE, "contact": {**NOTICE["contact"], "name": "\udc00"}})
    assert "contact.name" in assert_problem(answer, 400)["errors"]


@pytest.mark.parametrize("body", [
    {**NOTICE, "date_of_birth": "9999-12-31"}, {**NOTICE, "date_of_birth": "0001-01-01"},
    {**NOTICE, "nhs_number": 10 ** 30}, {**NOTICE, "status": 1e308}, {**NOTICE, "contact": [1] * 5},
    {**NOTICE, "postcode": "x" * 11}, {**NOTICE, "family_name": "\u202eevil"},
])
def test_odd_values_are_problems_never_a_500(api, body):
    answer = send(api, body=body)
    assert answer.status_code in (200, 201, 400), answer.get_data(as_text=True)


def test_an_expired_clients_notices_are_no_longer_found(api):
    runtime = api["runtime"]
    expiring = register(runtime, api["elsewhere"]["otto"], scopes=("index:notify",), days=1, name="Old")
    assert send(api, credentials=expiring).status_code == 201
    searcher = register(runtime, api["people"]["admin"], name="Liquidlogic", days=30)
    with time_machine.travel(now() + timedelta(days=3)):
        assert_problem(send(api, credentials=expiring, method="DELETE"), 401)  # it cannot withdraw it
        assert search(api, credentials=searcher, family_name="Noticed", date_of_birth="2016-03-04") == []


def test_a_notice_naming_a_shielded_child_without_an_nhs_number_is_shielded_too(api):
    from app.models import Child
    runtime, people = api["runtime"], api["people"]
    with runtime.db.session() as session:
        child = session.get(Child, people["child"])
        child.shielded = True
        keys = {"family_name": child.family_name, "date_of_birth": child.date_of_birth.isoformat(),
                "postcode": child.postcode}
    body = {**NOTICE, **keys, "nhs_number": None}
    assert send(api, body=body).status_code == 201
    assert search(api, family_name=keys["family_name"], date_of_birth=keys["date_of_birth"]) == []


def test_one_clients_notices_cannot_hide_an_ecaf_caf_from_the_index(api):
    from tests.journeys import to_delivery
    to_delivery(api["runtime"], api["people"])
    keys = {"family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST"}
    for number in range(50):
        assert send(api, reference=f"EHA-{number}", body={**NOTICE, **keys, "nhs_number": None}).status_code == 201
    results = search(api, **keys)
    assert "ecaf" in {r["source"]["kind"] for r in results}


def test_notices_matching_better_than_a_caf_take_ten_places_at_most_and_never_the_cafs(api):
    """An exact notice outranks a near CAF; fifty of them still leave the CAF in the results."""
    from tests.journeys import to_delivery
    to_delivery(api["runtime"], api["people"])
    exact = {"family_name": "Childe", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST"}  # the CAF's is "Child"
    for number in range(50):
        assert send(api, reference=f"EHA-{number}", body={**NOTICE, **exact, "nhs_number": None}).status_code == 201
    results = search(api, **exact)
    kinds = [r["source"]["kind"] for r in results]
    assert kinds.count("received_notice") == 10 and kinds.count("ecaf") == 1
    assert kinds[-1] == "ecaf"  # near, so after the exact notices
