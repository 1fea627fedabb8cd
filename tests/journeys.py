"""Form data and step sequences shared by the tests: a practitioner's journey through a CAF."""
from __future__ import annotations

from datetime import date, timedelta

from app.clock import now

from .conftest import complete


def today() -> date:
    return now().date()


CHECKLIST = {"decision": "full_caf", "healthy": {"answer": "no", "notes": "Often unwell"}}
CONSENT = {"decision": "given", "subject": "child", "given_by_name": "Pat Parent", "relationship": "Mother",
           "has_parental_responsibility": True, "method": "written", "given_on": "2026-01-05",
           "consent_to_storage": True, "consent_to_sharing": True, "excluded_recipients": ["Police"]}


def assessment() -> dict:
    return {"section_a_administration": {"date_started": today().isoformat()},
            "section_b_child": {"given_names": "Casey", "family_name": "Child", "date_of_birth": "2015-05-01"},
            "section_k_voice": {"child_comments": "I want to go to school more."}}


def start(runtime, people) -> int:
    return runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"]).episode_id


def prepare(runtime, people, *, concern: bool = False) -> int:
    """Start an episode and take it to a ready assessment (consent given)."""
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist", {**CHECKLIST, "child_protection_concern": concern})
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    return episode_id


def to_delivery(runtime, people, *, concern: bool = False) -> int:
    episode_id = prepare(runtime, people, concern=concern)
    complete(runtime, episode_id, "complete_assessment", assessment())
    return episode_id


def to_review(runtime, people, review_in_days: int = 42) -> int:
    episode_id = to_delivery(runtime, people)
    complete(runtime, episode_id, "tac_meeting", {"meeting_date": today().isoformat(), "attendees": [
        {"name": "Pat Parent", "role": "Mother", "is_family_member": True}]})
    complete(runtime, episode_id, "appoint_lead_professional", {"lead_professional_email": people["lead_email"]})
    plan(runtime, episode_id, review_in_days)
    return episode_id


def plan(runtime, episode_id: int, review_in_days: int = 42):
    return complete(runtime, episode_id, "action_plan", {
        "actions": [{"identified_need": "Attendance", "action": "Morning club", "responsible": "School"}],
        "headline_outcomes": ["education"],
        "next_review_date": (today() + timedelta(days=review_in_days)).isoformat()})
