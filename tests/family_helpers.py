"""Shared steps of the family tests: brothers and sisters recorded together, consent on one of them."""
from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from app.clock import now
from app.models import Child, Episode, EpisodeMember, FamilyChild
from tests.conftest import complete
from tests.journeys import CHECKLIST, CONSENT
from tests.web import browser

TWINS = {"count": "2", "child-0-given_names": "Ada", "child-0-family_name": "Twin",
         "child-0-date_of_birth-day": "1", "child-0-date_of_birth-month": "2", "child-0-date_of_birth-year": "2017",
         "child-1-given_names": "Bo", "child-1-family_name": "Twin", "child-1-date_of_birth-day": "1",
         "child-1-date_of_birth-month": "2", "child-1-date_of_birth-year": "2017",
         "child-0-nhs_number_missing": "not_known", "child-1-nhs_number_missing": "detrimental", "address": "3 Pair Road",
         "postcode": "W2 5RS", "action": "start"}


def signed_in(web, who="originator", username="olive"):
    """One signed-in browser per person and test: an authenticator code works only once."""
    clients = web.setdefault("clients", {})
    if who not in clients:
        clients[who] = browser(web["app"])
        clients[who].sign_in(username, web["secrets"][who])
    return clients[who]


def episode_of(runtime, given_names: str) -> SimpleNamespace:
    with runtime.db.session() as session:
        episode = session.scalar(select(Episode).join(Child, Child.id == Episode.child_id)
                                 .where(Child.given_names == given_names).order_by(Episode.id.desc()).limit(1))
        return SimpleNamespace(id=episode.id, child_id=episode.child_id, reference=episode.reference,
                               started_at=episode.started_at)


def family_of(runtime, child_id: int) -> int | None:
    with runtime.db.session() as session:
        return session.scalar(select(FamilyChild.family_id).where(FamilyChild.child_id == child_id))


def record_twins(web) -> dict:
    """Olive records Ada and Bo Twin together; Ada's family gives consent; Leah joins Ada's team only."""
    runtime, people = web["runtime"], web["people"]
    started = signed_in(web).post("/children/new", {**TWINS, "authority": str(people["authority"])},
                                  token_from="/children/find")
    assert started.status_code == 302, started.get_data(as_text=True)
    ada, bo = episode_of(runtime, "Ada"), episode_of(runtime, "Bo")
    complete(runtime, ada.id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, ada.id, "obtain_consent", CONSENT)
    with runtime.db.session() as session:
        session.add(EpisodeMember(episode_id=ada.id, user_id=people["lead"], role="tac_member",
                                  added_at=now(), added_by_id=people["originator"]))
    return {"ada": ada, "bo": bo, "family": family_of(runtime, ada.child_id)}
