"""The services directory: who reads it, who keeps it, who may be on a service's team."""
from __future__ import annotations

from sqlalchemy import false

from app.models import Organisation, Service, User

from .accounts import is_usable
from .episodes import authority_id_of

# For the pages' role gates (app.web.access.roles); the functions below say the same per user.
DIRECTORY_READERS = ("practitioner", "administrator", "service_team")
DIRECTORY_KEEPERS = ("administrator",)


def may_keep_directory(user: User | None) -> bool:
    """Add, change, take out and bring back the authority's services, and their teams."""
    return is_usable(user) and user.role in DIRECTORY_KEEPERS


def may_join_service_team(user: User | None) -> bool:
    """Only a service team account works a service's requests (its vetting is asked when it signs in)."""
    return user is not None and user.role == "service_team"


def directory_clause(user: User | None):
    """SQL: the services a reader of the directory sees, their own authority's (the page's role gate
    says who reads it)."""
    authority_id = authority_id_of(user)
    return false() if authority_id is None else Service.authority_id == authority_id


def team_candidate_clause(service: Service):
    """SQL over User joined to its Organisation: accounts of the service's own authority, the only
    ones that may be put on its team."""
    return Organisation.authority_id == service.authority_id
