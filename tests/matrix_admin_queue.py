"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

The administrators' queue: search requests from practitioners, reports, and deadline alerts.
`seed(runtime, world)` adds a waiting search request and an open alert in the world's authority;
when the matrix has called it, the cases use them (an administrator of that authority gets the page,
or 400 for an empty form, the other authority's administrator 404). Without it they use ids that
do not exist, which every administrator gets as 404.
"""
from __future__ import annotations

from sqlalchemy import select

from app.clock import now
from app.models import AdminAlert, Episode, SearchRequest, SearchRequestChild

MISSING = 999999


def seed(runtime, world: dict) -> None:
    """A waiting search request from the originator, and an open 35-day alert on the "given" episode."""
    with runtime.db.session() as session:
        episode = session.scalar(select(Episode).where(Episode.id == world["episodes"]["given"]))
        request = SearchRequest(requester_id=world["users"]["originator"], authority_id=episode.authority_id,
                                reason="Details differ", status="submitted", created_at=now())
        request.children.append(SearchRequestChild(given_names="Casey", family_name="Child"))
        alert = AdminAlert(episode_id=episode.id, authority_id=episode.authority_id, kind="assessment_overdue",
                           message="Not submitted within the time limit", raised_at=now())
        session.add_all([request, alert])
        session.flush()
        world["admin_queue"] = {"search_request": request.id, "alert": alert.id}


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, episode_rule, ANONYMOUS, ADMINS, PRACTITIONERS,
    SIGNED_IN, VIEW, MANAGE, child_rule and admin_record_rule (an administrator's page about one record)."""
    Case, by_role, ADMINS = rules.Case, rules.by_role, rules.ADMINS
    seeded = world.get("admin_queue") or {}
    request_id, alert_id = seeded.get("search_request", MISSING), seeded.get("alert", MISSING)

    def record_rule(ok: int):
        return rules.admin_record_rule(bool(seeded), ok)

    request_path = f"/admin/search-requests/{request_id}"
    return {
        "search_queue.index": [Case("GET", "/admin/search-requests", by_role(ADMINS))],
        "search_queue.show": [Case("GET", request_path, record_rule(200)),
                              Case("POST", request_path, record_rule(400), {})],
        "reports.index": [Case("GET", "/reports", by_role(ADMINS)),
                          Case("GET", "/reports?from_month=13&from_year=2025&to_month=1&to_year=2025",
                               by_role(ADMINS, ok=400))],
        "reports.csv": [Case("GET", "/reports/months.csv", by_role(ADMINS)),
                        Case("GET", "/reports/outcomes.csv", by_role(ADMINS)),
                        Case("GET", "/reports/unknown.csv", by_role(ADMINS, ok=404))],
        "alerts.resolve": [Case("POST", f"/admin/alerts/{alert_id}/resolve", record_rule(400), {})],
    }
