"""Roles: who may give or take which role."""
from __future__ import annotations

from app.models import ROLES, User

from .accounts import is_usable

# Roles that act for every authority at once: no local administrator may give or take them.
NATIONAL_ROLES = frozenset({"process_owner"})


def may_grant_role(actor: User | None, role: str) -> bool:
    """May `actor` give an account `role`, or take `role` away from one? An administrator may, for
    every role but a national one; an operator on the server is not a user and is not asked here."""
    return (is_usable(actor) and actor.role == "administrator" and role in ROLES
            and role not in NATIONAL_ROLES)
