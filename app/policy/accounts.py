"""Accounts: which may be used at all. Every other rule starts here, so a disabled, locked or
unvetted account is refused the same way on every path (sign-in, each request, each step)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import and_, or_

from app.clock import now
from app.models import User


def blocked_because(user: User | None) -> str | None:
    """Why an administrator's action (or too many failed sign-ins) stops the account, or None."""
    if user is None or not user.active:
        return "the account is disabled"
    if user.locked_at is not None:
        return "the account is locked"
    return None


def unusable_because(user: User | None, today: date | None = None) -> str | None:
    """Why the account may not be used today, or None: blocked, or no current vetting and training."""
    return blocked_because(user) or user.vetting_problem(today or now().date())


def is_usable(user: User | None, today: date | None = None) -> bool:
    """An account that may be used: enabled, not locked, vetted and trained (N4)."""
    return unusable_because(user, today) is None


def may_present_secrets(user: User | None) -> bool:
    """May this account try a password or code? Vetting is asked only once a secret is proven, so
    that saying why reveals nothing to a guesser; everything else fails like a wrong password."""
    return blocked_because(user) is None and user.password_hash is not None


def vetting_problem_clause(today: date):
    """SQL for User.vetting_problem: no check, no training, or an expired check."""
    return or_(User.vetting_type.is_(None), User.vetting_reference.is_(None), User.vetting_checked_on.is_(None),
               User.training_completed_on.is_(None),
               and_(User.vetting_expires_on.is_not(None), User.vetting_expires_on < today))


def usable_clause(today: date):
    """SQL for is_usable."""
    return and_(User.active.is_(True), User.locked_at.is_(None), ~vetting_problem_clause(today))


# An administrator's own sign-in is changed from their own account page, never from these actions.
NOT_ON_YOURSELF = frozenset({"disable", "revoke_sessions", "reset_authenticator", "reset_password"})


def may_act_on_account(admin: User, account: User, action: str) -> bool:
    """May the administrator take `action` (disable, unlock, ...) on `account`? Not those that change
    their own sign-in (the caller has found `account` among their authority's)."""
    return not (action in NOT_ON_YOURSELF and account.id == admin.id)


def may_change_role_of(admin: User, account: User) -> bool:
    """An administrator keeps their own role: another administrator changes it."""
    return account.id != admin.id


def may_get_password_link(user: User | None) -> bool:
    """A set-password link is sent to, and works for, an enabled account only."""
    return user is not None and bool(user.active)


def may_record_vetting(user: User | None) -> bool:
    """A vetting check is recorded as checked by an administrator's account (an operator recording
    it on the server names one: the operator is not a user and is not asked)."""
    return user is not None and user.role == "administrator"
