"""Demo data: an authority, its organisations and users, and children with episodes at every stage,
plus one episode for each list an administrator watches (errored, overdue, stuck, at risk).

Every episode is driven through the real engine, so the demo is what the process produces; the
episodes that need time to have passed are begun earlier (their clock is moved back) and woken.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from app.accounts import passwords, totp
from app.clock import now
from app.config import Config
from app.engine.runner import Engine
from app.models import (Authority, Child, Episode, HumanTask, Organisation, Service, ServiceRequest, ServiceTeamMember,
                        User)

ORGANISATIONS = [
    ("Queen's Park Primary School", "school"),
    ("Lisson Grove GP Practice", "gp_practice"),
    ("Westminster Health Visiting", "health_visiting"),
    ("Metropolitan Police, Westminster", "police"),
    ("Westminster Family Support", "council_service"),
]
USERS = [  # username, name, title, role, organisation index
    ("priya.shah", "Priya Shah", "Inclusion lead", "practitioner", 0),
    ("tom.okafor", "Tom Okafor", "Health visitor", "practitioner", 2),
    ("sam.reid", "Sam Reid", "Family support worker", "practitioner", 4),
    ("ada.admin", "Ada Lovell", "eCAF administrator", "administrator", 4),
    ("owen.owner", "Owen Marsh", "CAF process owner", "process_owner", 4),
    ("pat.owner", "Pat Quinn", "CAF process owner", "process_owner", 4),  # a second pair of eyes for deploys
    ("nina.new", "Nina Patel", "School nurse", "practitioner", 2),
    ("jo.hughes", "Jo Hughes", "Police schools officer", "practitioner", 3),
]
# Every demo account signs in with this password. All but NEW_USER have an authenticator set up
# already (`ecaf users totp NAME` prints its current code); NEW_USER sets one up at first sign-in.
DEMO_PASSWORD = "westminster demo account"
NEW_USER = "nina.new"
CHILDREN = [  # given, family, date of birth, postcode, how far its episode goes
    ("Amira", "Begum", date(2016, 4, 12), "W9 2AB", "preparation"),
    ("Leo", "Carter", date(2014, 9, 3), "NW8 7QT", "assessment"),
    ("Maya", "Nowak", date(2019, 1, 22), "W2 5RS", "delivery"),
    ("Jordan", "Ellis", date(2011, 6, 30), "SW1P 4DR", "closed"),
]
# Episodes that need an administrator, started by Sam Reid: what happened and how long ago.
PROBLEMS = [  # given, family, date of birth, postcode, problem
    ("Noah", "Williams", date(2013, 11, 2), "W10 4XY", "errored"),     # the lead named is excluded by consent
    ("Grace", "Adeyemi", date(2017, 3, 15), "NW1 6AB", "overdue"),     # child protection, 48 hours passed
    ("Ethan", "Brooks", date(2012, 8, 19), "W11 3CD", "stuck"),        # nothing done for 20 days
    ("Lily", "Chen", date(2018, 5, 7), "SW1V 2EF", "at_risk"),         # 5 days left of the 35
]
BEGUN_EARLIER = {"overdue": timedelta(hours=50), "stuck": timedelta(days=20), "at_risk": timedelta(days=30)}


def _checklist(concern: bool = False) -> dict:
    checklist = {"decision": "full_caf", "child_protection_concern": concern,
                 "healthy": {"answer": "not_sure", "notes": "Frequent absences for illness."}}
    if concern:
        checklist["child_protection_details"] = "Bruising seen on both arms; the child said not to tell anyone."
    return checklist


def _consent(today: date) -> dict:
    return {"decision": "given", "subject": "child", "given_by_name": "Parent (demo)", "relationship": "Mother",
            "has_parental_responsibility": True, "consent_to_storage": True, "consent_to_sharing": True,
            "method": "written", "given_on": today.isoformat(), "leaflet_given": True}


def _assessment(child: Child, today: date) -> dict:
    return {"section_a_administration": {"date_started": today.isoformat()},
            "section_b_child": {"given_names": child.given_names, "family_name": child.family_name,
                                "date_of_birth": child.date_of_birth.isoformat()},
            "section_i_conclusions": {"key_needs": "Support with attendance and routines at home."}}


def _ready(session, episode_id: int, name: str) -> HumanTask:
    return session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id, HumanTask.name == name,
                                                  HumanTask.status == "ready"))


def _demo_account(user: User, config: Config) -> User:
    user.password_hash = passwords.hash_password(DEMO_PASSWORD)
    user.password_changed_at = now()
    user.demo_account = True
    user.vetting_type, user.vetting_reference = "enhanced_dbs", f"DEMO-{user.username.upper()}"
    user.vetting_checked_on = now().date() - timedelta(days=200)
    user.vetting_expires_on = user.vetting_checked_on + timedelta(days=3 * 365)
    user.training_completed_on = now().date() - timedelta(days=100)
    if user.username != NEW_USER:
        user.totp_secret = totp.seal(config, totp.new_secret())
        user.totp_enrolled_at = now()
    return user


SERVICES = [  # name, what it offers, contact, email, phone, evidence required, response in working days
    ("Day Care", "Funded day care places for children under five whose development or home circumstances "
     "need extra support, with a key worker who links with the family's health visitor.",
     "Early Years Placements Team", "daycare@westminster.example", "020 7000 2100",
     ["The assessment's development section", "The health visitor's latest review",
      "The support already in place from the Team Around the Child"], 10),
    ("Educational Psychology", "Assessment and advice for children whose learning or development gives "
     "concern in school, and consultation for the teachers and families who support them.",
     "Educational Psychology Service", "edpsych@westminster.example", "020 7000 2200",
     ["The assessment's learning section", "The school's SEN support plan",
      "Two terms of support in place, with what changed"], 20),
    ("Parenting Team", "Parenting programmes and one-to-one work at home for parents who want help with "
     "routines, boundaries and their child's behaviour.",
     "Parenting Team duty worker", "parenting@westminster.example", "020 7000 2300",
     ["The assessment's family and environment section", "The action plan",
      "The parents' agreement to take part"], 10),
    ("Disabled Children's Team", "Short breaks, specialist social work and help with equipment for disabled "
     "children and their families.",
     "Disabled Children's Team duty desk", "dct@westminster.example", "020 7000 2400",
     ["The assessment's health section", "A diagnosis or specialist report",
      "The support already in place from health and education"], 15),
]
SERVICE_TEAM = [  # username, name, title, service
    ("eve.psych", "Eve Marlow", "Educational psychologist", "Educational Psychology"),
    ("dan.daycare", "Dan Okoro", "Day care placements officer", "Day Care"),
]


def _load_services(session, authority: Authority, organisation: Organisation, config: Config) -> None:
    """The authority's targeted and specialist services, two of them with a service team account."""
    services = {name: Service(authority_id=authority.id, name=name, offers=offers, contact_name=contact,
                              contact_email=email, contact_phone=phone, required_evidence=evidence,
                              response_working_days=days, active=True)
                for name, offers, contact, email, phone, evidence, days in SERVICES}
    session.add_all(services.values())
    for username, name, title, service in SERVICE_TEAM:
        user = _demo_account(User(username=username, email=f"{username}@westminster.example", full_name=name,
                                  job_title=title, role="service_team", organisation_id=organisation.id,
                                  phone="020 7000 1000", created_at=now()), config)
        session.add(user)
        session.flush()
        services[service].members.append(ServiceTeamMember(user_id=user.id, added_at=now()))
    session.flush()


def load_demo(db, engine: Engine) -> bool:
    """Load the demo once. Returns False when it is already there."""
    with db.session() as session:
        if session.scalar(select(Authority).where(Authority.code == "WST")) is not None:
            return False
        authority = Authority(code="WST", name="Westminster (demo)", admin_email="ecaf-admin@westminster.example",
                              admin_phone="020 7000 0001", safeguarding_phone="020 7000 0999")
        session.add(authority)
        session.flush()
        orgs = [Organisation(name=n, kind=k, authority_id=authority.id) for n, k in ORGANISATIONS]
        session.add_all(orgs)
        session.flush()
        users = [_demo_account(User(username=u, email=f"{u}@westminster.example", full_name=n, job_title=t,
                                    role=r, organisation_id=orgs[o].id, phone="020 7000 1000", created_at=now()),
                               engine.config)
                 for u, n, t, r, o in USERS]
        session.add_all(users)
        session.flush()
        _load_services(session, authority, orgs[4], engine.config)
        children = [Child(given_names=g, family_name=f, date_of_birth=d, postcode=p, address=f"1 Demo Street, {p}",
                          home_authority_id=authority.id, created_at=now()) for g, f, d, p, _ in CHILDREN + PROBLEMS]
        session.add_all(children)
        session.flush()
        originator, lead = users[0].id, users[1]
        plan = [(c.id, stage) for c, (*_, stage) in zip(children, CHILDREN)]
        problems = [(c.id, problem) for c, (*_, problem) in zip(children[len(CHILDREN):], PROBLEMS)]
        worker, officer = users[2].id, users[-1].email
    today = now().date()
    for child_id, stage in plan:
        episode_id = engine.start_episode(child_id=child_id, originator_id=originator).episode_id
        steps = {"preparation": [], "assessment": ["pre_assessment_checklist", "obtain_consent"]}
        steps["delivery"] = steps["assessment"] + ["complete_assessment"]
        steps["closed"] = steps["delivery"] + ["tac_meeting", "appoint_lead_professional", "action_plan", "review",
                                               "final_summary"]
        for name in steps[stage]:
            with db.session() as session:
                task = _ready(session, episode_id, name)
                child = session.get(Episode, episode_id).child
                data = {
                    "pre_assessment_checklist": _checklist(),
                    "obtain_consent": _consent(today),
                    "complete_assessment": _assessment(child, today) if child else {},
                    "tac_meeting": {"meeting_date": today.isoformat()},
                    "appoint_lead_professional": {"lead_professional_email": lead.email, "lead_professional_name": lead.full_name},
                    "action_plan": {"headline_outcomes": ["education"],
                                    "next_review_date": (today + timedelta(weeks=6)).isoformat()},
                    "review": {"review_date": today.isoformat(), "outcome": "close",
                               "outcome_progress": {"education": {"progress": "some_progress"}}},
                    "final_summary": {"closure_reason": "needs_met", "outcome_progress": {
                        "education": {"progress": "met", "evidence": "Attending every day this term"}}},
                }[name]
            engine.complete_task(episode_id, task.id, data, task.assigned_user_id)
        if stage == "delivery":
            _send_request(db, engine, episode_id, originator, "Day Care")
    for child_id, problem in problems:
        _problem_episode(db, engine, child_id, worker, problem, officer, today)
    return True


def _complete(db, engine: Engine, episode_id: int, name: str, data: dict):
    with db.session() as session:
        task = _ready(session, episode_id, name)
    return engine.complete_task(episode_id, task.id, data, task.assigned_user_id)


def _problem_episode(db, engine: Engine, child_id: int, originator: int, problem: str, officer: str,
                     today: date) -> None:
    """An episode on one of the administrator's lists, reached through the process itself."""
    episode_id = engine.start_episode(child_id=child_id, originator_id=originator).episode_id
    _complete(db, engine, episode_id, "pre_assessment_checklist", _checklist(concern=problem == "overdue"))
    consent = _consent(today)
    if problem == "errored":
        consent["excluded_services"] = ["police"]
    _complete(db, engine, episode_id, "obtain_consent", consent)
    if problem == "errored":
        with db.session() as session:
            child = session.get(Episode, episode_id).child
        _complete(db, engine, episode_id, "complete_assessment", _assessment(child, today))
        _complete(db, engine, episode_id, "tac_meeting", {"meeting_date": today.isoformat()})
        # The team names the police officer, whom the family's consent keeps out: the step that
        # records the lead professional fails and waits for an administrator.
        _complete(db, engine, episode_id, "appoint_lead_professional",
                  {"lead_professional_email": officer, "lead_professional_name": "Jo Hughes"})
    if problem in BEGUN_EARLIER:
        _begin_earlier(db, engine, episode_id, BEGUN_EARLIER[problem])


def _begin_earlier(db, engine: Engine, episode_id: int, earlier: timedelta) -> None:
    """As if the episode had begun `earlier` ago: its waiting timers, its tasks and its last step move
    back; a time limit now past fires in the same step, as the timer loop would have fired it."""
    def move_back(session, episode, workflow, ctx):
        for task in workflow.get_tasks(state=TaskState.WAITING):
            value = task.internal_data.get("event_value")
            if isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition) \
                    and isinstance(value, str):
                task.internal_data["event_value"] = (TimerEventDefinition.get_datetime(value) - earlier).isoformat()
        for row in session.scalars(select(HumanTask).where(HumanTask.episode_id == episode.id)):
            row.created_at -= earlier
            row.due_at = row.due_at - earlier if row.due_at else None
            row.completed_at = row.completed_at - earlier if row.completed_at else None

    engine._step(episode_id, None, move_back, allow_statuses=("open",))
    with db.session() as session:
        episode = session.get(Episode, episode_id)
        episode.started_at -= earlier
        episode.updated_at = now() - earlier


def _send_request(db, engine: Engine, episode_id: int, requester_id: int, service_name: str) -> None:
    """A request waiting in a service team's inbox."""
    with db.session() as session:
        service = session.scalar(select(Service).where(Service.name == service_name))
        request = ServiceRequest(episode_id=episode_id, service_id=service.id, requested_by_id=requester_id,
                                 status="draft", created_at=now())
        session.add(request)
        session.flush()
        request_id, evidence = request.id, list(service.required_evidence)
    engine.send_message(episode_id, "service_request", {"id": request_id}, requester_id)
    with db.session() as session:
        task = _ready(session, episode_id, "request_form")
    engine.complete_task(episode_id, task.id, {
        "needs": "A funded nursery place three mornings a week, to support Maya's speech and play.",
        "support_in_place": "Health visitor reviews every six weeks; a parenting group since the spring.",
        "evidence": [{"requirement": item, "evidence": "See the assessment and the TAC meeting notes."}
                     for item in evidence]}, requester_id)
