"""The national index asked by a client system for its authority (POST /api/v1/index/search).

The same matching as *Is there a CAF?* (national_index.search), seen as a practitioner of the
client's authority sees it: no shielded child, no way into the CAF. Audited as an index search,
in the caller's transaction, with the client's name in place of a user.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app import policy
from app.models import ApiClient
from app.services import national_index
from app.services.api_clients import today
from app.services.national_index import IndexResult

SCOPE = "index:read"


class ClientSearchRefused(PermissionError):
    """The client is not live or lacks the index:read scope."""


def search(session: Session, client: ApiClient, *, given_names: str | None, family_name: str | None,
           date_of_birth: date | None, postcode: str | None, reason: str | None,
           nhs_number: str | None = None) -> list[IndexResult]:
    if not policy.is_live_client(client, today()) or not policy.client_may(client, SCOPE):
        raise ClientSearchRefused(f"client {client.client_id if client else None} may not search the index")
    # Seen as a practitioner of the client's authority sees it (no viewer: no shielded child).
    return national_index.answer(session, None, None, "api_index_search", given_names=given_names,
                                 family_name=family_name, date_of_birth=date_of_birth, postcode=postcode,
                                 nhs_number=nhs_number, reason=reason,
                                 audited={"client": client.name, "client_ref": client.client_id,
                                          "authority_id": client.authority_id})
