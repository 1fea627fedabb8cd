"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

Comparing process versions and migrating episodes. Process owners read and migrate; administrators
of any authority read the comparison, the dry-run report and the results, and are refused the
migration itself (403); everyone else is refused. `seed(runtime, world)` deploys a version 2 (a
28-day limit) so the pages have two versions to compare; without it they answer 400 to readers.
"""
from __future__ import annotations

from app.engine.library import Bundle, deploy
from app.models import ProcessVersion

MISSING_BATCH = "00000000-0000-0000-0000-000000000000"


def seed(runtime, world: dict) -> None:
    with runtime.db.session() as session:
        first = session.query(ProcessVersion).filter_by(process_id="caf_episode", version=1).one()
        files = {name: xml.replace('caf_time_limit = "P35D"', 'caf_time_limit = "P28D"', 1)
                 for name, xml in first.bpmn_files.items()}
        version, _ = deploy(session, Bundle(files, dict(first.forms)), change_note="28 days")
        world["process_migrations"] = {"target": version.version}


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, ANONYMOUS and ADMINS."""
    Case, by_role, ADMINS = rules.Case, rules.by_role, rules.ADMINS
    seeded = world.get("process_migrations") or {}
    target = seeded.get("target", 2)
    readers = ADMINS | {"owner"}
    page = 200 if seeded else 400
    versions = f"from=1&to={target}"
    return {
        "process_migrations.diff": [Case("GET", f"/processes/caf_episode/diff?{versions}", by_role(readers, ok=page)),
                                    Case("GET", "/processes/caf_episode/diff", by_role(readers, ok=400))],
        "process_migrations.diagram": [Case("GET", "/processes/caf_episode/diff/v1.bpmn", by_role(readers))],
        "process_migrations.plan": [Case("GET", f"/processes/caf_episode/migrate?{versions}",
                                         by_role(readers, ok=page))],
        # An empty form: the owner is told what is missing; nobody else may migrate at all.
        "process_migrations.run": [Case("POST", "/processes/caf_episode/migrate", by_role({"owner"}, ok=400), {})],
        "process_migrations.check": [Case("POST", "/processes/caf_episode/migrate/check", by_role({"owner"}, ok=400),
                                          {})],
        "process_migrations.batch": [Case("GET", f"/processes/migrations/{MISSING_BATCH}",
                                          by_role(readers, ok=404))],
    }
