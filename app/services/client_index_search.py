"""The national index asked by a client system for its authority (POST /api/v1/index/search).

The same matching as *Is there a CAF?* (national_index.search), seen as a practitioner of the
client's authority sees it: no shielded child, no way into the CAF. Audited as an index search,
in the caller's transaction, with the client's name in place of a user.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app import policy
from app.audit_lists import episodes_shown
from app.models import ApiClient
from app.services import national_index
from app.services.api_clients import today
from app.services.national_index import IndexResult, SearchInvalid

SCOPE = "index:read"


class ClientSearchRefused(PermissionError):
    """The client is not live or lacks the index:read scope."""


def search(session: Session, client: ApiClient, *, given_names: str | None, family_name: str | None,
           date_of_birth: date | None, postcode: str | None, reason: str | None,
           nhs_number: str | None = None) -> list[IndexResult]:
    if not policy.is_live_client(client, today()) or not policy.client_may(client, SCOPE):
        raise ClientSearchRefused(f"client {client.client_id if client else None} may not search the index")
    keys = national_index.normalised_keys(family_name, date_of_birth, postcode, nhs_number)
    found = national_index.problems(keys, reason)
    if found:
        raise SearchInvalid(found)
    # user None: the view of someone who is not an administrator (shielded children left out).
    results = [national_index._result(None, *row) for row in national_index._matches(session, None, keys)]
    episodes_shown(session, None, "api_index_search", [r.episode_id for r in results], action="index_searched",
                   reason=reason.strip(), criteria=national_index._criteria(given_names, keys), results=len(results),
                   exact=sum(r.match == "exact" for r in results),
                   by_nhs_number=sum(r.by_nhs_number for r in results), shielded_shown=0,
                   client=client.name, client_ref=client.client_id, authority_id=client.authority_id)
    return results
