"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

Contributions to an episode's assessment. Whoever may open the episode sees the list. Only the
lead professional (the originator before one is appointed) may invite, and only as a practitioner:
posted empty, they are asked what to invite (400) or told why nothing can be invited on this
episode now (400, the episode not open or not at a stage that takes contributions); everyone
else, administrators included, gets 404 and nothing is made.
"""
from __future__ import annotations


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, episode_rule, VIEW, MANAGE and ADMINS."""
    Case, episode_rule = rules.Case, rules.episode_rule
    found: dict = {"contributions.index": [], "contributions.invite": []}
    for state, episode_id in world["episodes"].items():
        base = f"/episodes/{episode_id}/contributions"
        found["contributions.index"].append(Case("GET", base, episode_rule(rules.VIEW[state])))
        found["contributions.invite"].append(Case("POST", base, episode_rule(rules.MANAGE[state] - rules.ADMINS, 400),
                                                  {}))
    # A forged invitation to the member the consent excludes (the police officer): refused to the
    # lead professional (400, nothing made), 404 to everyone else.
    given = world["episodes"]["given"]
    found["contributions.invite"].append(Case(
        "POST", f"/episodes/{given}/contributions", episode_rule(rules.MANAGE["given"] - rules.ADMINS, 400),
        {"member": str(world["users"]["excluded"]), "sections": "section_h_strengths_needs"}))
    return found
