"""Where a CAF is, urgent things that look urgent, outcomes that read as outcomes: the stages on the
episode page, the diagram's focus, the child-protection deadline on the task list and episode page,
the banner that takes focus after a concern, and the page a refusal of consent leads to."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import time_machine
from sqlalchemy import select

from app.clock import as_utc
from app.models import AuditEvent, Episode, HumanTask
from app.web import deadlines
from tests.conftest import complete, ready_task
from tests.journeys import CHECKLIST, CONSENT, prepare, start, to_delivery
from tests.web import browser, text_of


def signed_in(web, who="originator", username="olive"):
    client = browser(web["app"])
    client.sign_in(username, web["secrets"][who])
    return client


def _concern_recorded_at(runtime, episode_id) -> datetime:
    with runtime.db.session() as session:
        return as_utc(session.scalar(select(AuditEvent.at).where(
            AuditEvent.episode_id == episode_id, AuditEvent.action == "child_protection_concern_recorded")))


def _stages(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-stage="(\w+)" data-state="([\w_]+)"', html))


def _attribute(html: str, name: str) -> str:
    match = re.search(rf'{name}="([^"]*)"', html)
    assert match, f"no {name}"
    return match.group(1)


# ---------------------------------------------------------------- deadlines as people read them

def test_deadlines_read_as_relative_and_uk_local_times():
    moment = datetime(2026, 12, 3, 3, 5, tzinfo=timezone.utc)
    due = moment + timedelta(hours=37)  # 4:05pm on Friday 4 December, GMT
    assert deadlines.uk_time(due, moment) == "Friday 4 December at 4:05pm"
    assert deadlines.deadline(due, moment) == "due in 37 hours, on Friday 4 December at 4:05pm"
    assert deadlines.deadline(due, moment, capital=True).startswith("Due in 37 hours")
    assert deadlines.due_in(due, moment) == "due in 37 hours"
    assert deadlines.deadline(moment - timedelta(hours=3, minutes=5), moment) == \
        "overdue by 3 hours (was due on Thursday 3 December at midnight)"
    assert deadlines.from_now(moment + timedelta(days=12), moment) == "in 12 days, on Tuesday 15 December at 3:05am"
    assert deadlines.due_in(moment + timedelta(minutes=25), moment) == "due in 25 minutes"
    # Summer time: 11:00 UTC is midday in London; another year is named.
    summer = datetime(2027, 7, 1, 11, 0, tzinfo=timezone.utc)
    assert deadlines.uk_time(summer, moment) == "Thursday 1 July 2027 at midday"
    assert deadlines.uk_time(datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc), moment) == "Saturday 5 December at 9am"


# ---------------------------------------------------------------- urgent looks urgent

def test_a_child_protection_case_is_due_within_48_hours_from_the_concern_on_its_row_and_episode(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    checklist = ready_task(runtime, episode_id, "pre_assessment_checklist")
    client.post(f"/tasks/{checklist.id}", {"action": "submit", "decision": "full_caf",
                                           "child_protection_concern": "true"})
    recorded = _concern_recorded_at(runtime, episode_id)
    consent = ready_task(runtime, episode_id, "obtain_consent")
    # Before consent the 48-hour timer is not waiting yet, but the limit already runs.
    assert consent.due_at is not None
    assert abs(as_utc(consent.due_at) - (recorded + timedelta(hours=48))) < timedelta(seconds=5)

    with time_machine.travel(as_utc(consent.due_at) - timedelta(hours=37, minutes=1)):
        client = signed_in(web)  # eleven hours on, signed in again
        html = client.get("/").get_data(as_text=True)
        tag = re.search(r'data-testid="assessment-due">([^<]+)<', html)
        assert tag and tag.group(1) == "Assessment due in 37 hours"
        assert 'govuk-tag govuk-tag--red ecaf-flag" data-testid="assessment-due"' in html
        assert "No deadline" not in text_of(client.get("/"))
        due_cell = re.search(r'data-testid="due"[^>]*>(.*?)</td>', html, flags=re.S).group(1)
        assert text_of_html(due_cell).strip() == f"Assessment due in 37 hours {deadlines.uk_time(consent.due_at)}"

        page = client.get(f"/episodes/{episode_id}").get_data(as_text=True)
        assert re.search(r'data-testid="assessment-due">Assessment due in 37 hours<', page)
        assert f"The assessment is due in 37 hours, on {deadlines.uk_time(consent.due_at)}." in text_of_html(page)
        assert text_of_html(page).count("Child-protection concern: complete the assessment within 48 hours") == 1
        assert "Obtain consent Due in 37 hours" in text_of_html(page)

    # Once consent is given the timer's own date is the same one.
    complete(runtime, episode_id, "obtain_consent", CONSENT)
    assessment = ready_task(runtime, episode_id, "complete_assessment")
    assert abs(as_utc(assessment.due_at) - as_utc(consent.due_at)) < timedelta(seconds=1)


def text_of_html(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&quot;", '"')


def test_a_case_without_a_concern_has_no_urgent_tag(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = prepare(runtime, people)
    client = signed_in(web)
    html = client.get("/").get_data(as_text=True)
    assert 'data-testid="assessment-due"' not in html
    assert "Due in 34 days" in text_of(client.get("/"))
    assert 'data-testid="assessment-due"' not in client.get(f"/episodes/{episode_id}").get_data(as_text=True)
    assert ready_task(runtime, episode_id, "complete_assessment").due_at is not None


def test_after_a_concern_the_safeguarding_banner_takes_focus_not_the_success_one(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    checklist = ready_task(runtime, episode_id, "pre_assessment_checklist")
    done = client.post(f"/tasks/{checklist.id}", {"action": "submit", "decision": "full_caf",
                                                  "child_protection_concern": "true"})
    html = client.get(done.location).get_data(as_text=True)
    banners = re.findall(r'<div class="govuk-notification-banner[ "][^>]*>', html)
    assert len(banners) == 2
    important = next(b for b in banners if 'data-testid="banner-important"' in b)
    success = next(b for b in banners if 'data-testid="banner-success"' in b)
    assert 'role="alert"' in important and "data-disable-auto-focus" not in important
    assert 'role="region"' in success and 'data-disable-auto-focus="true"' in success
    assert html.index('data-testid="banner-important"') < html.index('data-testid="banner-success"')


def test_a_success_on_its_own_still_takes_focus(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    checklist = ready_task(runtime, episode_id, "pre_assessment_checklist")
    done = client.post(f"/tasks/{checklist.id}", {"action": "submit", "decision": "full_caf"})
    html = client.get(done.location).get_data(as_text=True)
    banners = re.findall(r'<div class="govuk-notification-banner[ "][^>]*>', html)
    assert len(banners) == 1 and 'role="alert"' in banners[0] and "data-disable-auto-focus" not in banners[0]


# ---------------------------------------------------------------- where you are

def test_the_episode_page_shows_its_stages_and_opens_the_diagram_on_the_current_task(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = to_delivery(runtime, people)
    html = signed_in(web).get(f"/episodes/{episode_id}").get_data(as_text=True)
    assert _stages(html) == {"preparation": "done", "assessment": "done", "delivery": "current",
                             "closure": "to_come"}
    assert 'aria-current="step" data-stage="delivery"' in html
    # The listeners are active too, but the view opens on the person's task.
    active = _attribute(html, "data-active").split()
    assert "request_wait" in active and "tac_meeting" in active
    assert _attribute(html, "data-current") == "tac_meeting"
    assert _attribute(html, "data-last") == "complete_assessment"  # shown beside it when both fit


# ---------------------------------------------------------------- outcomes read as outcomes

def _refuse(client, runtime, episode_id):
    consent = ready_task(runtime, episode_id, "obtain_consent")
    return client.post(f"/tasks/{consent.id}", {"action": "submit", "decision": "refused",
                                                "refusal_reason": "The family want to manage on their own"})


def test_consent_refused_leads_to_a_page_that_says_the_caf_is_closed(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    checklist = ready_task(runtime, episode_id, "pre_assessment_checklist")
    client.post(f"/tasks/{checklist.id}", {"action": "submit", "decision": "full_caf"})
    refused = _refuse(client, runtime, episode_id)
    assert refused.status_code == 302 and refused.location == f"/episodes/{episode_id}/outcome"
    page = text_of(client.get(refused.location))
    assert "is complete" not in page and "Success" not in page
    for expected in ("Consent was refused, so this CAF is closed", "Nothing was shared", "What was kept",
                     "The family want to manage on their own", "1 May 2040", "What you can do now",
                     "start a new CAF", "0100 000 999"):
        assert expected in page, expected
    with runtime.db.session() as session:
        assert session.get(Episode, episode_id).status == "closed"
        # It shows the child's name, the refusal's reason and the date of birth: a view, audited.
        viewed = session.scalars(select(AuditEvent).where(AuditEvent.action == "episode_viewed",
                                                          AuditEvent.episode_id == episode_id)).all()
        assert [row.detail.get("page") for row in viewed] == ["outcome"]


def test_a_closed_episode_offers_no_actions_that_need_an_open_one(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
    client = signed_in(web)
    _refuse(client, runtime, episode_id)
    html = client.get(f"/episodes/{episode_id}").get_data(as_text=True)
    text = text_of_html(html)
    assert "This CAF is closed: consent refused" in text
    assert f'href="/episodes/{episode_id}/outcome"' in html
    for offered in ("add or remove people", "record a withdrawal", "Requests to services",
                    "Requests to move episodes", "Waiting to be done", "evidence such as letters"):
        assert offered not in text, offered
    assert "People and consent" in text and "Attached files" in text
    assert _stages(html) == {"preparation": "ended", "assessment": "not_reached", "delivery": "not_reached",
                             "closure": "not_reached"}
    assert "CAF closed here" in text
    # The diagram opens on the last step a person took, not on a thumbnail of the whole.
    assert _attribute(html, "data-last") == "obtain_consent" and _attribute(html, "data-current") == ""
    assert 'aria-label="Process diagram of a closed CAF. Last step: Obtain consent."' in html


def test_the_outcome_page_of_an_open_caf_is_its_episode_page_and_others_cannot_see_it(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    assert client.get(f"/episodes/{episode_id}/outcome").location == f"/episodes/{episode_id}"
    stranger = signed_in(web, "lead", "leah")
    assert stranger.get(f"/episodes/{episode_id}/outcome").status_code == 404


def test_a_caf_closed_without_a_full_assessment_leads_to_its_outcome(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = start(runtime, people)
    client = signed_in(web)
    checklist = ready_task(runtime, episode_id, "pre_assessment_checklist")
    done = client.post(f"/tasks/{checklist.id}", {"action": "submit", "decision": "no_further_action"})
    assert done.location == f"/episodes/{episode_id}/outcome"
    page = text_of(client.get(done.location))
    assert "This CAF is closed" in page and "No CAF needed: no further action" in page
    with runtime.db.session() as session:
        assert session.scalar(select(HumanTask).where(HumanTask.episode_id == episode_id,
                                                      HumanTask.status == "ready")) is None
