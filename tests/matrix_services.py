"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

The services directory. `seed(runtime, world)` adds a service of the world's authority with the
service team actor as its member; when the matrix has called it, the cases use them (the
authority's administrator gets the page, 400 for an empty form, 302 for the removal; the other
authority's administrator 404). Without it they use ids that do not exist, which every
administrator gets as 404.
"""
from __future__ import annotations

from app.clock import now
from app.models import Service, ServiceTeamMember, User

MISSING = 999999


def seed(runtime, world: dict) -> None:
    """Educational Psychology in the world's authority, with the service team actor as its member."""
    with runtime.db.session() as session:
        sally = session.get(User, world["users"]["service_team"])
        service = Service(authority_id=sally.organisation.authority_id, name="Educational Psychology",
                          offers="Assessment and advice", contact_name="Duty psychologist",
                          contact_email="edpsych@ecaf.test", required_evidence=["The school's SEN support plan"],
                          response_working_days=20, active=True)
        service.members.append(ServiceTeamMember(user_id=sally.id, added_at=now()))
        session.add(service)
        session.flush()
        world["services"] = {"service": service.id, "member": service.members[0].id}


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, ANONYMOUS, ADMINS, PRACTITIONERS and admin_record_rule."""
    Case, by_role, ADMINS = rules.Case, rules.by_role, rules.ADMINS
    seeded = world.get("services") or {}
    service_id, member_id = seeded.get("service", MISSING), seeded.get("member", MISSING)

    def record_rule(ok: int):
        return rules.admin_record_rule(bool(seeded), ok)

    readers = rules.PRACTITIONERS | ADMINS | {"service_team"}
    base = f"/services/{service_id}"
    return {
        "services_directory.index": [Case("GET", "/services", by_role(readers))],
        "services_directory.create": [Case("GET", "/services/new", by_role(ADMINS)),
                                      Case("POST", "/services/new", by_role(ADMINS, ok=400), {})],
        "services_directory.edit": [Case("GET", f"{base}/edit", record_rule(200)),
                                    Case("POST", f"{base}/edit", record_rule(400), {})],
        "services_directory.add_member": [Case("POST", f"{base}/members", record_rule(400), {})],
        # The administrator removes the member once: the matrix signs each actor in once.
        "services_directory.remove_member": [Case("POST", f"{base}/members/{member_id}/remove", record_rule(302), {})],
    }
