"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py."""
from __future__ import annotations


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, episode_rule, ANONYMOUS, ADMINS, PRACTITIONERS,
    SIGNED_IN, VIEW, MANAGE and child_rule (an administrator's page about one record of their authority)."""
    return {}
