"""Whose rows a user works with: an administrator sees and changes only their own authority's
episodes, accounts, applications, alerts, search requests and audit trail; nobody else is given
an authority's rows through these clauses."""
from __future__ import annotations

from sqlalchemy import and_, false

from app.models import EpisodeMember, User

from .episodes import authority_id_of, is_administrator_of

# A member in one of these parts of an episode holds none of its tasks (they write a contribution).
TASKLESS_PARTS = ("contributor",)


def authority_clause(user: User | None, column):
    """SQL: `column` (an authority id) is the administrator's own authority; false for anyone else."""
    authority_id = authority_id_of(user)
    if not is_administrator_of(user, authority_id):
        return false()
    return column == authority_id


def held_here_clause(user: User | None, column):
    """SQL: `column` (an authority id) is the user's own authority, whatever their role: a child whose
    CAF was held here may start another here on their own record (app/services/children.returning)."""
    authority_id = authority_id_of(user)
    return column == authority_id if authority_id is not None else false()


def of_own_authority(admin: User | None, user: User | None) -> bool:
    """Is `user` an account of the administrator's own authority (so theirs to give work to)?"""
    authority_id = authority_id_of(admin)
    return is_administrator_of(admin, authority_id) and authority_id_of(user) == authority_id


def leads_clause(admin: User | None, organisation_authority):
    """SQL over User (joined to its Organisation): the administrator's authority's practitioners,
    the accounts that may be an episode's lead professional (`organisation_authority`: the
    organisation's authority id column)."""
    return and_(authority_clause(admin, organisation_authority), User.role == "practitioner")


def task_holder_clause(member=EpisodeMember):
    """SQL: a current member in a part that may hold the episode's tasks."""
    return member.role.not_in(TASKLESS_PARTS)


def holds_tasks(member) -> bool:
    """A membership (an EpisodeMember) in a part that may hold the episode's tasks."""
    return member.role not in TASKLESS_PARTS


__all__ = ["TASKLESS_PARTS", "authority_clause", "held_here_clause", "holds_tasks", "leads_clause",
           "of_own_authority", "task_holder_clause"]
