"""The services directory: who reads it, who keeps it, who may be on a service's team."""
from __future__ import annotations

from app.models import User

from .accounts import is_usable

# For the pages' role gates (app.web.access.roles); the functions below say the same per user.
DIRECTORY_READERS = ("practitioner", "administrator", "service_team")
DIRECTORY_KEEPERS = ("administrator",)


def may_keep_directory(user: User | None) -> bool:
    """Add, change, take out and bring back the authority's services, and their teams."""
    return is_usable(user) and user.role in DIRECTORY_KEEPERS


def may_join_service_team(user: User | None) -> bool:
    """Only a service team account works a service's requests (its vetting is asked when it signs in)."""
    return user is not None and user.role == "service_team"
