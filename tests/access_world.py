"""A small world for access tests: one authority's people in every part an episode can give them,
an administrator of another authority, and episodes with consent not yet given, given, and withdrawn."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.clock import now
from app.models import Authority, Child, EpisodeMember, HumanTask, Organisation, User
from app.services import episode_people

from .conftest import VETTED, complete
from .journeys import CHECKLIST, CONSENT, assessment, today
from .web import give_credentials

# Consent that excludes the police: an officer on the team must never see the CAF.
CONSENT_EXCLUDING_POLICE = {**CONSENT, "excluded_services": ["police"]}
ACTORS = ("originator", "lead", "member", "contributor", "excluded", "non_member", "admin", "other_admin",
          "owner", "service_team")
USERNAMES = {"originator": "olive", "lead": "leah", "admin": "adam", "member": "tom", "contributor": "cora",
             "excluded": "pete", "non_member": "nora", "other_admin": "otto", "owner": "owen", "service_team": "sally"}


def _user(session, username, name, organisation_id, role="practitioner"):
    user = User(username=username, email=f"{username}@ecaf.test", full_name=name, job_title="Practitioner",
                role=role, organisation_id=organisation_id, phone="0100 000 222", created_at=now(), **VETTED)
    session.add(user)
    session.flush()
    return user.id


def _child(session, authority_id, given, family):
    child = Child(given_names=given, family_name=family, date_of_birth=date(2016, 3, 4), postcode="TE2 2ND",
                  address="2 Test Road", home_authority_id=authority_id, created_at=now())
    session.add(child)
    session.flush()
    return child.id


def build(runtime, people) -> dict:
    with runtime.db.session() as session:
        authority = session.get(Authority, people["authority"])
        authority.contributors_enabled = True
        police = Organisation(name="Test Police Station", kind="police", authority_id=authority.id)
        charity = Organisation(name="Test Family Charity", kind="voluntary_sector", authority_id=authority.id)
        elsewhere = Authority(code="OTH", name="Otherborough", admin_email="admin@other.test")
        session.add_all([police, charity, elsewhere])
        session.flush()
        town_hall = Organisation(name="Otherborough Council", kind="council_service", authority_id=elsewhere.id)
        session.add(town_hall)
        session.flush()
        school = session.get(User, people["originator"]).organisation_id
        ids = {"originator": people["originator"], "lead": people["lead"], "admin": people["admin"],
               "member": _user(session, "tom", "Tom Team", school),
               "contributor": _user(session, "cora", "Cora Contributor", charity.id),
               "excluded": _user(session, "pete", "Pete Police", police.id),
               "non_member": _user(session, "nora", "Nora Nobody", school),
               "other_admin": _user(session, "otto", "Otto Other", town_hall.id, "administrator"),
               "owner": _user(session, "owen", "Owen Owner", school, "process_owner"),
               "service_team": _user(session, "sally", "Sally Service", charity.id, "service_team")}
        second_child = _child(session, authority.id, "Nell", "None")
        third_child = _child(session, authority.id, "Will", "Withdrawn")
    episodes = {"given": _in_delivery(runtime, people, people["child"]),
                "withdrawn": _in_delivery(runtime, people, third_child),
                "none": runtime.engine.start_episode(child_id=second_child,
                                                     originator_id=people["originator"]).episode_id}
    complete(runtime, episodes["none"], "pre_assessment_checklist", CHECKLIST)
    for episode_id in episodes.values():
        _add_members(runtime, episode_id, ids)
    with runtime.db.session() as session:
        lead = session.get(User, ids["lead"])
    episode_people.withdraw_consent(runtime, episodes["withdrawn"], lead,
                                    {"withdrawn_by": "Pat Parent", "reason": "Moving on", "confirm": "yes"})
    secrets = {actor: give_credentials(runtime, user_id) for actor, user_id in ids.items()}
    return {"users": ids, "episodes": episodes, "secrets": secrets}


def _in_delivery(runtime, people, child_id: int) -> int:
    episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    complete(runtime, episode_id, "obtain_consent", CONSENT_EXCLUDING_POLICE)
    complete(runtime, episode_id, "complete_assessment", assessment())
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    return episode_id


def _add_members(runtime, episode_id: int, ids: dict) -> None:
    """Members as rows: the police officer joined before the family excluded the police."""
    with runtime.db.session() as session:
        for actor, role, sections in (("member", "tac_member", None),
                                      ("contributor", "contributor", ["section_h_strengths_needs"]),
                                      ("excluded", "tac_member", None)):
            session.add(EpisodeMember(episode_id=episode_id, user_id=ids[actor], role=role, sections=sections,
                                      added_at=now(), added_by_id=ids["lead"]))


def ready_task(runtime, episode_id: int) -> HumanTask | None:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                      HumanTask.status == "ready").order_by(HumanTask.id))
