"""Administrators' pages for API clients: register (the secret shown once, stored hashed), list,
revoke with a reason; only for their own authority's clients; every change audited."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

from sqlalchemy import select

from app.models import ApiClient, AuditEvent
from app.services import api_clients
from tests.conftest import other_authority
from tests.web import browser, give_credentials, text_of

SEARCH = {"family_name": "Child", "date_of_birth": "2015-05-01", "postcode": "TE1 1ST",
          "reason": "Checking before a referral to family support"}


def signed_in(web, who: str = "admin", username: str = "adam", secret: str | None = None):
    client = browser(web["app"])
    client.sign_in(username, secret or web["secrets"][who])
    return client


def register_form(**changes) -> dict:
    """The form as posted; "scopes" is a list (one value per box ticked)."""
    expires = api_clients.today() + timedelta(days=90)
    form = {"name": "Mosaic case management", "scopes": ["index:read"], "expires_on-day": str(expires.day),
            "expires_on-month": str(expires.month), "expires_on-year": str(expires.year)}
    return {**form, **changes}


def events(runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def clients(runtime) -> list[ApiClient]:
    with runtime.db.session() as session:
        return list(session.scalars(select(ApiClient).order_by(ApiClient.id)))


def credentials_on(page) -> str:
    return re.search(r'data-testid="credentials"><code>([^<]+)</code>', page.get_data(as_text=True)).group(1)


def registered_credentials(admin) -> str:
    made = admin.post("/admin/api-clients/new", register_form(), token_from="/admin/api-clients/new")
    assert made.status_code == 302, made.get_data(as_text=True)
    return credentials_on(admin.get(made.location))


def test_registering_shows_the_secret_once_and_stores_only_its_hash(web):
    runtime = web["runtime"]
    admin = signed_in(web)
    made = admin.post("/admin/api-clients/new", register_form(), token_from="/admin/api-clients/new")
    [row] = clients(runtime)
    assert made.status_code == 302 and made.location.endswith(f"/admin/api-clients/{row.id}/registered")
    assert "Set-Cookie" in made.headers and row.client_id not in made.headers["Set-Cookie"]  # sealed
    page = admin.get(made.location)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    credentials = credentials_on(page)
    client_id, _, secret = credentials.partition(".")
    # Reloading the page registers nothing and shows the secret no more.
    again = admin.get(made.location)
    assert again.status_code == 200 and secret not in again.get_data(as_text=True)
    assert "cannot show it again" in text_of(again) and len(clients(runtime)) == 1
    assert row.client_id == client_id and row.scopes == ("index:read",) and row.name == "Mosaic case management"
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in row.secret_hash
    assert len(secret) >= 40
    listing = admin.get("/admin/api-clients/")
    assert "Mosaic case management" in text_of(listing) and secret not in listing.get_data(as_text=True)
    [registered] = events(runtime, "api_client_registered")
    assert registered.actor_id == web["people"]["admin"] and registered.detail["client"] == "Mosaic case management"
    assert secret not in json.dumps(registered.detail)
    answer = web["app"].test_client().post("/api/v1/index/search", json=SEARCH,
                                           headers={"Authorization": f"Bearer {credentials}"})
    assert answer.status_code == 200


def test_bad_registration_is_explained_and_what_was_typed_is_kept(web):
    admin = signed_in(web)
    page = admin.post("/admin/api-clients/new", register_form(name="", scopes=[], **{"expires_on-year": "2001"}),
                      token_from="/admin/api-clients/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "govuk-error-summary" in html
    for message, anchor in [("Enter the name of the client system", "#name"),
                            ("Select what the client system may do", "#scopes"),
                            ("The expiry date must be in the future", "#expires-on-day")]:
        assert message in text_of(page) and f'href="{anchor}"' in html, message
    assert 'id="scopes"' in html and 'id="expires-on-day"' in html and 'value="2001"' in html
    forged = admin.post("/admin/api-clients/new", register_form(scopes=["index:read", "everything"]),
                        token_from="/admin/api-clients/new")
    assert forged.status_code == 400 and "Select only the permissions listed" in text_of(forged)
    assert clients(web["runtime"]) == [] and events(web["runtime"], "api_client_registered") == []


def test_revoking_asks_are_you_sure_needs_a_reason_and_stops_the_client(web):
    runtime = web["runtime"]
    admin = signed_in(web)
    credentials = registered_credentials(admin)
    [row] = clients(runtime)
    path = f"/admin/api-clients/{row.id}/revoke"
    assert "Are you sure you want to revoke Mosaic case management?" in text_of(admin.get(path))
    empty = admin.post(path, {"reason": ""})
    assert empty.status_code == 400 and 'href="#reason"' in empty.get_data(as_text=True)
    assert clients(runtime)[0].revoked_at is None
    done = admin.post(path, {"reason": "Contract ended"})
    assert done.status_code == 302
    [row] = clients(runtime)
    assert row.revoked_reason == "Contract ended" and row.revoked_by_id == web["people"]["admin"]
    [revoked] = events(runtime, "api_client_revoked")
    assert revoked.detail["client"] == "Mosaic case management" and revoked.detail["reason"] == "Contract ended"
    answer = web["app"].test_client().post("/api/v1/index/search", json=SEARCH,
                                           headers={"Authorization": f"Bearer {credentials}"})
    assert answer.status_code == 401
    assert admin.get(path).status_code == 404, "a revoked client is not revoked again"


def test_another_authoritys_administrator_neither_sees_nor_revokes_a_client(web):
    runtime = web["runtime"]
    admin = signed_in(web)
    admin.post("/admin/api-clients/new", register_form(), token_from="/admin/api-clients/new")
    [row] = clients(runtime)
    elsewhere = other_authority(runtime)
    otto = signed_in(web, username="otto", secret=give_credentials(runtime, elsewhere["otto"]))
    assert "Mosaic" not in text_of(otto.get("/admin/api-clients/"))
    assert otto.get(f"/admin/api-clients/{row.id}/revoke").status_code == 404
    assert otto.get(f"/admin/api-clients/{row.id}/registered").status_code == 404
    assert otto.post(f"/admin/api-clients/{row.id}/revoke", {"reason": "Mischief"},
                     token_from="/admin/api-clients/").status_code == 404
    assert clients(runtime)[0].revoked_at is None and events(runtime, "api_client_revoked") == []
    [denied] = [e for e in events(runtime, "access_denied") if e.actor_id == elsewhere["otto"]][-1:]
    assert f"api client {row.id}" in denied.detail["asked_for"]


def test_a_practitioner_cannot_reach_the_pages(web):
    lead = signed_in(web, "lead", "leah")
    assert lead.get("/admin/api-clients/").status_code == 403
    assert lead.get("/admin/api-clients/new").status_code == 403
    assert clients(web["runtime"]) == []
