"""*Is there a CAF?* shows a notice received from another system beside eCAF's CAFs: its source, its
contact, and plainly that it is not an eCAF CAF and cannot be opened."""
from __future__ import annotations

from tests.conftest import other_authority
from tests.journeys import to_delivery
from tests.test_api_index import call, register
from tests.test_api_index_notices import NOTICE, NOTICES
from tests.test_national_index import audited, results_part, search_form, signed_in
from tests.web import text_of


def sent(web, **changes) -> None:
    elsewhere = other_authority(web["runtime"])
    credentials = register(web["runtime"], elsewhere["otto"], scopes=("index:notify",), name="Mosaic")
    answer = call(web["app"], credentials, {**NOTICE, **changes}, path=f"{NOTICES}/EHA-7", method="PUT")
    assert answer.status_code == 201, answer.get_data(as_text=True)


def test_the_results_page_shows_a_notice_with_its_source_and_says_it_is_not_an_ecaf_caf(web):
    runtime, people = web["runtime"], web["people"]
    to_delivery(runtime, people)
    sent(web, family_name="Child", date_of_birth="2015-05-01", postcode="TE1 1ST", nhs_number=None)
    page = signed_in(web).post("/index", search_form())
    assert page.status_code == 200
    shown = text_of(page)
    assert "1 CAF found, and 1 assessment reported by another system" in shown
    assert "Early Help Assessment reported by Mosaic for Otherborough" in shown and "An eCAF CAF" in shown
    assert "This is not an eCAF CAF and cannot be opened in eCAF" in shown and "Reported by another system" in shown
    assert "Erin Early" in shown and "erin@other.test" in shown and "01632 960 001" in shown
    html = results_part(page)
    assert html.count('data-testid="index-notice"') == 1 and html.count('data-testid="index-result"') == 1
    assert "EHA-7" not in html and "Nia" not in html and "TE1 1ST" not in html  # the client's reference, given names
    [searched] = audited(runtime, "index_searched")
    assert searched.detail["results"] == 2 and len(searched.detail["notices"]) == 1


def test_a_notice_alone_is_found_by_its_nhs_number_without_its_details(web):
    sent(web)
    page = signed_in(web).post("/index", search_form(nhs_number="943 476 5919", family_name="Someone", postcode="",
                                                     **{"date_of_birth-day": "", "date_of_birth-month": "",
                                                        "date_of_birth-year": ""}))
    assert page.status_code == 200, text_of(page)
    shown = results_part(page)
    assert "No CAF found, but 1 assessment reported by another system" in shown
    assert "The NHS number you entered" in shown and "Noticed" not in shown
