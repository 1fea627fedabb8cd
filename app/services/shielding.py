"""Shielding: a child at risk if found is hidden from index results, except to administrators.

ContactPoint's precedent: an administrator of the child's home authority sets or lifts the shield,
always with a reason, and both are audited. While shielded, searches by practitioners (the national
index and find-a-child) leave the child's CAF out as if it did not exist.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from app import audit
from app.models import Child, User
from app.policy.shielding import may_shield, not_shielded_for, sees_shielded  # noqa: F401 (callers use them here)

MIN_REASON_WORDS = 3


class ShieldingRefused(PermissionError):
    """Only an administrator of the child's home authority may shield or unshield."""


class ReasonMissing(ValueError):
    """A reason of a few words is required, as ContactPoint required one for every access."""


def reason_problem(reason: str | None, doing: str) -> str | None:
    """Why `reason` will not do, as a message for the form, or None when it is enough."""
    words = (reason or "").split()
    if not words:
        return f"Enter why you are {doing}"
    if len(words) < MIN_REASON_WORDS:
        return f"Give a reason of at least {MIN_REASON_WORDS} words for {doing}"
    return None


def shield(session: Session, admin: User, child: Child, reason: str) -> bool:
    """Hide the child from index results. Returns False when it was shielded already."""
    return _set_shield(session, admin, child, reason, shielded=True)


def unshield(session: Session, admin: User, child: Child, reason: str) -> bool:
    """Show the child in index results again. Returns False when it was not shielded."""
    return _set_shield(session, admin, child, reason, shielded=False)


def _set_shield(session: Session, admin: User, child: Child, reason: str, *, shielded: bool) -> bool:
    if not may_shield(admin, child):
        raise ShieldingRefused(f"user {admin.id if admin else None} may not change the shielding of child {child.id}")
    problem = reason_problem(reason, "shielding this child" if shielded else "removing the shield")
    if problem:
        raise ReasonMissing(problem)
    if bool(child.shielded) == shielded:
        return False
    child.shielded = shielded
    audit.record(session, "child_shielded" if shielded else "child_unshielded", actor_id=admin.id,
                 child_id=child.id, reason=reason.strip())
    return True
