"""The little world the engine and timer benchmarks run in: the shipped processes, one authority with
one school, and two vetted practitioners (ids 1 and 2)."""
from __future__ import annotations

from datetime import date

from app.clock import now
from app.config import PROJECT_ROOT, Config
from app.engine.library import Bundle, deploy
from app.jobs.runtime import Runtime
from app.migrate import upgrade
from app.models import Authority, Organisation, User

# A current vetting check and training: without them no one may be appointed or act on an episode.
VETTED = {"vetting_type": "enhanced_dbs", "vetting_reference": "B1", "vetting_checked_on": date(2025, 1, 1),
          "vetting_expires_on": date(2035, 1, 1), "training_completed_on": date(2025, 1, 1)}


def small_world(url: str, audit_key: str | bytes | None = None) -> tuple[Runtime, int]:
    """A migrated, seeded database at `url` (an empty SQLite file or a scratch PostgreSQL database):
    its runtime and the authority's id. Without `audit_key` the development key seals the trail."""
    upgrade(url)
    config = Config(database_url=url, testing=True, **({"audit_key": audit_key} if audit_key else {}))
    runtime = Runtime.build(config)
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(PROJECT_ROOT / "processes"))
        authority = Authority(code="BEN", name="Bench", admin_email="admin@bench.test")
        session.add(authority)
        session.flush()
        org = Organisation(name="School", kind="school", authority_id=authority.id)
        session.add(org)
        session.flush()
        session.add_all([User(username=f"u{i}", email=f"u{i}@bench.test", full_name=f"User {i}",
                              organisation_id=org.id, created_at=now(), **VETTED) for i in (1, 2)])
        return runtime, authority.id
