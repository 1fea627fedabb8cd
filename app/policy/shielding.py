"""Shielding: who sees shielded children, and who shields or lifts the shield (ContactPoint's precedent)."""
from __future__ import annotations

from sqlalchemy import false, or_, true

from app.models import Child, User

from .accounts import is_usable
from .episodes import is_administrator_of


def sees_shielded(user: User | None) -> bool:
    """Administrators see shielded children (marked as such); nobody else does."""
    return is_usable(user) and user.role == "administrator"


def not_shielded_for(user: User | None, child=Child):
    """A WHERE clause leaving out shielded children unless `user` may see them.

    Rows without a child (an index entry whose child record is gone) stay in."""
    if sees_shielded(user):
        return true()
    return or_(child.shielded.is_(None), child.shielded == false())


def may_shield(user: User | None, child: Child) -> bool:
    """Only an administrator of the child's home authority sets or lifts the shield."""
    return is_administrator_of(user, child.home_authority_id)
