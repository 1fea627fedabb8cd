"""Authorization matrix cases for service requests: see tests/test_authorization_matrix.py.

An episode's requests are read by whoever may open the episode; only practitioners working on it
ask (an empty form answers 400). The team pages are for service teams alone, and a request
that is not their service's is a 404 like one that does not exist.
"""
from __future__ import annotations

MISSING = 999999


def cases(world: dict, ids: dict, rules) -> dict:
    Case, by_role, episode_rule, ANONYMOUS, VIEW = (rules.Case, rules.by_role, rules.episode_rule, rules.ANONYMOUS,
                                                    rules.VIEW)

    def team_only(ok: int):
        return lambda actor: 302 if actor == ANONYMOUS else ok if actor == "service_team" else 403

    found: dict[str, list] = {
        "service_requests.inbox": [Case("GET", "/team/requests", by_role({"service_team"}))],
        "service_requests.team_request": [Case("GET", f"/team/requests/{MISSING}", team_only(404))],
        "service_requests.decide": [Case("POST", f"/team/requests/{MISSING}", team_only(404), {})],
        "service_requests.team_download": [Case("GET", f"/team/requests/{MISSING}/attachments/{MISSING}",
                                                team_only(404))],
        # The authority's settings (contributions on or off): its administrators only; an empty form is a 400.
        "authority_settings.settings": [Case("GET", "/admin/settings", by_role(rules.ADMINS))],
        "authority_settings.save": [Case("POST", "/admin/settings", by_role(rules.ADMINS, ok=400), {})],
    }
    for state, episode_id in world["episodes"].items():
        path = f"/episodes/{episode_id}/service-requests"
        found.setdefault("service_requests.episode_requests", []).append(
            Case("GET", path, episode_rule(VIEW[state])))
        found.setdefault("service_requests.start", []).append(
            Case("POST", path, episode_rule(VIEW[state] - {"admin"}, 400), {}))
    return found
