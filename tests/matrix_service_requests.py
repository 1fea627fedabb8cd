"""Authorization matrix cases for service requests: see tests/test_authorization_matrix.py.

An episode's requests are read by whoever may open the episode; only practitioners working on it
ask (an empty form answers 400). The team pages are for service teams alone, and a request
that is not their service's is a 404 like one that does not exist.
"""
from __future__ import annotations

from app.clock import now
from app.models import Organisation, Service, ServiceRequest, ServiceTeamMember, User

from .conftest import VETTED

MISSING = 999999


def seed(runtime, world: dict) -> None:
    """Two requests from the consented episode, both to services the service team actor is on: one
    the consent allows, and one whose team includes a police officer (the world's consent excludes
    the police), so the consent excludes the whole service and its team sees nothing of it."""
    episode_id = world["episodes"]["given"]
    with runtime.db.session() as session:
        sally = session.get(User, world["users"]["service_team"])
        authority_id = sally.organisation.authority_id
        police = session.query(Organisation).filter_by(kind="police", authority_id=authority_id).first()
        officer = User(username="percy", email="percy@ecaf.test", full_name="Percy Police", role="service_team",
                       organisation_id=police.id, created_at=now(), **VETTED)
        session.add(officer)
        session.flush()
        allowed = Service(authority_id=authority_id, name="Family Support", offers="Family support workers",
                          contact_email="family@ecaf.test", required_evidence=[], response_working_days=10)
        excluded = Service(authority_id=authority_id, name="Youth Justice", offers="Youth justice workers",
                           contact_email="youth@ecaf.test", required_evidence=[], response_working_days=10)
        allowed.members.append(ServiceTeamMember(user_id=sally.id, added_at=now()))
        excluded.members.extend([ServiceTeamMember(user_id=sally.id, added_at=now()),
                                 ServiceTeamMember(user_id=officer.id, added_at=now())])
        session.add_all([allowed, excluded])
        session.flush()
        requests = {}
        for name, service in (("allowed", allowed), ("excluded", excluded)):
            row = ServiceRequest(episode_id=episode_id, service_id=service.id, status="sent", content={},
                                 requested_by_id=world["users"]["originator"], created_at=now(), sent_at=now(),
                                 due_at=now())
            session.add(row)
            session.flush()
            requests[name] = row.id
        world["service_requests"] = {"requests": requests, "excluded_service": excluded.id}


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
    seeded = world.get("service_requests")
    if seeded:
        # A request to a service the consent allows is the team's; one to a service the consent
        # excludes is a 404 for its team like one that does not exist, and a forged post naming
        # that service is refused (400) to everyone who may ask, and 404 to everyone else.
        allowed, excluded = seeded["requests"]["allowed"], seeded["requests"]["excluded"]
        found["service_requests.team_request"] += [Case("GET", f"/team/requests/{allowed}", team_only(200)),
                                                   Case("GET", f"/team/requests/{excluded}", team_only(404))]
        found["service_requests.decide"].append(Case("POST", f"/team/requests/{excluded}", team_only(404),
                                                     {"decision": "accept"}))
        found["service_requests.team_download"].append(
            Case("GET", f"/team/requests/{excluded}/attachments/{MISSING}", team_only(404)))
        given = world["episodes"]["given"]
        found["service_requests.start"] = [Case("POST", f"/episodes/{given}/service-requests",
                                                episode_rule(VIEW["given"] - {"admin"}, 400),
                                                {"service": str(seeded["excluded_service"])})]
    for state, episode_id in world["episodes"].items():
        path = f"/episodes/{episode_id}/service-requests"
        found.setdefault("service_requests.episode_requests", []).append(
            Case("GET", path, episode_rule(VIEW[state])))
        found.setdefault("service_requests.start", []).append(
            Case("POST", path, episode_rule(VIEW[state] - {"admin"}, 400), {}))
    return found
