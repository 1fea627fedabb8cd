"""The administrators' System page: messages not going out, workers down and deadlines late, in
words; no child's details; audited; for administrators only."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app import create_app
from app.clock import now
from app.jobs import heartbeat
from app.models import AuditEvent, Episode, OutboxMessage
from app.services import system_status
from tests import journeys
from tests.conftest import REDIS_URL, other_authority
from tests.web import browser, text_of

PATH = "/admin/system"


def _admin(app, web):
    client = browser(app)
    client.sign_in("adam", web["secrets"]["admin"])
    return client


def _page(client) -> str:
    response = client.get(PATH)
    assert response.status_code == 200
    return text_of(response)


def _message(**fields) -> OutboxMessage:
    values = dict(channel="email", kind="test", recipient="leah@testshire.test", subject="s", body="b",
                  status="pending", attempts=0, next_attempt_at=now(), created_at=now())
    values.update(fields)
    values.setdefault("idempotency_key", f"test:{values['kind']}")
    return OutboxMessage(**values)


def test_a_failing_channel_is_told_in_words_without_addresses(web):
    runtime = web["runtime"]
    admin = _admin(web["app"], web)
    assert "Email Working No messages waiting." in _page(admin)
    with runtime.db.session() as session:
        session.add(_message(kind="first", attempts=3, last_error="ConnectionRefusedError: [Errno 111] Connection "
                                                                  "refused"))
        session.add(_message(kind="second"))
        session.add(_message(kind="held", attempts=1, next_attempt_at=now() + timedelta(seconds=30),
                             last_error="not tried: the channel has failed since 10:00:00 UTC, next try at 10:00:30"))
        session.add(_message(kind="given_up", status="failed", attempts=6,
                             last_error="SMTPRecipientsRefused: {'leah@testshire.test': (550, b'No such user')}"))
        session.add(_message(kind="index", channel="index", recipient="https://index.example/notices",
                             attempts=1, last_error="index endpoint answered 503"))
    with time_machine.travel(now() + timedelta(minutes=14, seconds=20)):
        shown = _page(admin)
    assert ("Email Failing 3 messages waiting, the oldest for 14 minutes. The last attempt failed: connection "
            "refused. eCAF keeps trying.") in shown
    assert ("In the last day eCAF gave up on 1 message: the mail server refused the recipient (550). "
            "An episode's messages can be sent again from its operations page.") in shown
    assert "National index notices Failing 1 message waiting, the oldest for 14 minutes. The last attempt failed: " \
           "index endpoint answered 503." in shown
    assert "Something needs attention now" in shown
    assert "Email: messages are not going out. National index notices: messages are not going out." in shown
    assert "leah@testshire.test" not in shown, "no email address on the page"


def test_a_channel_that_has_stopped_without_failing_points_to_the_workers(web):
    runtime = web["runtime"]
    with runtime.db.session() as session:
        session.add(_message(kind="stuck"))
    admin = _admin(web["app"], web)
    with time_machine.travel(now() + timedelta(minutes=10)):
        shown = _page(admin)
    assert "Email Not going out 1 message waiting, the oldest for 10 minutes. None has failed, so nothing is " \
           "trying to send them: check the workers below." in shown


def test_without_redis_jobs_run_in_the_web_app(web):
    shown = _page(_admin(web["app"], web))
    assert "Background jobs run inside the web app" in shown and "Inside the web app" in shown



@pytest.mark.redis
def test_workers_running_then_none_for_three_minutes(web, redis_connection):
    app = create_app(replace(web["runtime"].config, redis_url=REDIS_URL))
    admin = _admin(app, web)
    assert "No worker is reporting: deadlines and messages are not being processed." in _page(admin)

    started = time.time()
    heartbeat.beat(redis_connection, "worker-host:4242", started - 3600)
    shown = _page(admin)
    assert "1 worker is running." in shown and "worker-host:4242" in shown and "last reported 0 seconds ago" in shown
    assert "Running" in shown and "No worker" not in shown

    with time_machine.travel(now() + timedelta(minutes=3)):  # the worker stopped beating
        shown = _page(admin)
    assert "No worker has reported for 3 minutes: deadlines and messages are not being processed." in shown
    assert "Stopped" in shown and "No worker is running: deadlines are not acted on" in shown
    assert "worker-host:4242" not in shown


def test_a_redis_that_cannot_be_reached_is_said_so(web):
    app = create_app(replace(web["runtime"].config, redis_url="redis://127.0.0.1:1/0"))
    shown = _page(_admin(app, web))
    assert "eCAF cannot reach Redis, so it cannot tell whether workers are running (the connection was refused " \
           "or lost)" in shown
    assert "127.0.0.1:1" not in shown, "no address of the infrastructure"


def test_late_deadlines_of_the_administrators_authority_with_links_to_the_lists(web):
    runtime, people = web["runtime"], web["people"]
    episode_id = journeys.start(runtime, people)
    elsewhere = other_authority(runtime)
    with runtime.db.session() as session:
        episode = session.get(Episode, episode_id)
        due = episode.next_timer_at = now() + timedelta(minutes=1)
        other = Episode(**{c: getattr(episode, c) for c in ("process_version_id", "status", "stage", "consent_state",
                                                           "originator_id", "started_at", "updated_at")},
                        authority_id=elsewhere["authority"], child_id=None, next_timer_at=due)
        session.add(other)
    admin = _admin(web["app"], web)
    assert "No deadline is late" in _page(admin)

    interval = runtime.config.sweep_interval_seconds
    with time_machine.travel(due + timedelta(seconds=interval - 5)):  # due, but within one sweep: not late yet
        assert "No deadline is late" in _page(admin)
    with time_machine.travel(due + timedelta(minutes=20)):
        response = admin.get(PATH)
    shown = text_of(response)
    assert ("1 episode has a deadline that fell due more than 1 minute ago and has not been acted on; the oldest "
            "fell due 20 minutes ago.") in shown, "the other authority's episode is not counted"
    assert "The reminders, warnings and deletions they bring have not happened yet." in shown
    assert "1 deadline is late." in shown
    html = response.get_data(as_text=True)
    assert 'href="/admin/episodes?show=timer"' in html and 'href="/admin/episodes?show=errored"' in html
    assert "Casey" not in shown and "Child" not in shown.replace("children", ""), "no child's name on the page"

    with runtime.db.session() as session:
        session.get(Episode, episode_id).status = "error"
    with time_machine.travel(due + timedelta(minutes=20)):
        assert "1 of them has an error that must be repaired first." in _page(admin)


def test_viewing_is_audited_and_only_administrators_may(web):
    runtime, people = web["runtime"], web["people"]
    admin = _admin(web["app"], web)
    _page(admin)
    with runtime.db.session() as session:
        [viewed] = session.scalars(select(AuditEvent).where(AuditEvent.action == "system_viewed")).all()
    assert viewed.actor_id == people["admin"]
    assert 'href="/admin/system"' in admin.get("/admin/").get_data(as_text=True), "linked from the dashboard"

    practitioner = browser(web["app"])
    practitioner.sign_in("olive", web["secrets"]["originator"])
    refused = practitioner.get(PATH)
    assert refused.status_code == 403 and "Email" not in text_of(refused)
    anonymous = browser(web["app"]).get(PATH)
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.location


@pytest.mark.redis
def test_a_worker_that_beats_but_whose_deadline_loop_gets_nowhere_is_named_stuck(web, redis_connection):
    app = create_app(replace(web["runtime"].config, redis_url=REDIS_URL))
    admin = _admin(app, web)
    moment = time.time()
    # Its heartbeat thread beats; its deadline loop last finished a pass five minutes ago (a hung connection).
    heartbeat.beat(redis_connection, "worker-host:5151", moment - 3600, timer_poll=1.0, timers_at=moment - 300)
    shown = _page(admin)
    assert "Stuck" in shown and "worker-host:5151" in shown
    assert "No worker is acting on deadlines: 1 worker reports but its deadline loop has done nothing" in shown
    assert "its deadline loop has done nothing for 5 minutes: restart it" in shown
    assert "The workers are stuck: deadlines are not acted on until they are restarted." in shown
    # Another, healthy, worker: the service runs, and the stuck one is still named.
    heartbeat.beat(redis_connection, "worker-host:6262", moment - 60, timer_poll=1.0, timers_at=moment)
    shown = _page(admin)
    assert "1 worker is running. 1 worker reports but is stuck: restart them." in shown


def test_words_for_durations_and_reasons():
    words = system_status.duration_words
    assert [words(s) for s in (0, 1, 59, 60, 119, 3600, 7200, 86400 * 3)] == [
        "0 seconds", "1 second", "59 seconds", "1 minute", "1 minute", "1 hour", "2 hours", "3 days"]
    reason = system_status.plain_reason
    assert reason("ConnectionRefusedError: [Errno 111] Connection refused") == "connection refused"
    assert reason("TimeoutError: timed out\nTraceback ...") == "timed out"
    assert reason("smtplib.SMTPRecipientsRefused: {'a.b@c.example': (550, b'No')}") == \
        "the mail server refused the recipient (550)"
    assert reason("HTTP 500 from the index") == "HTTP 500 from the index"
    assert reason("the mail server could not be used: ConnectionRefusedError: [Errno 111] Connection refused") == \
        "the mail server could not be used: connection refused"
    assert reason("") is None and len(reason("the server said " + "x" * 500)) == 200
    # Only eCAF's own words: what the far end said (a name in a mailbox message, a token in a URL) stays out.
    assert reason("refused: the mail server refused the recipient: 550 no such user Leah Okoro") == \
        "the mail server refused the recipient (550)"
    assert reason("the mail server deferred the recipient: 452 mailbox of o'neil@x.example is full") == \
        "the mail server deferred the recipient (452)"
    assert reason("the index endpoint could not be reached: ConnectionError: HTTPSConnectionPool(host='idx', "
                  "port=443): Max retries exceeded with url: /n?token=s3cret (Caused by NameResolutionError)") == \
        "the index endpoint could not be reached: the server's name could not be found"
    assert reason("GOV.UK Notify answered 400: BadRequestError: Can't send to this recipient") == \
        "GOV.UK Notify answered 400"
    assert reason("KeyError: 'x'") == "an unexpected error (the worker's log has the details)"
    # The brief's own words, as one line.
    email = system_status.ChannelState("email", pending=12, oldest_pending_seconds=14 * 60 + 5, retrying=True,
                                       retry_error=reason("ConnectionRefusedError: [Errno 111] Connection refused"))
    assert email.summary() == ("Email: 12 messages waiting, the oldest for 14 minutes. The last attempt failed: "
                               "connection refused. eCAF keeps trying.")
    assert system_status.ChannelState("index").summary() == "National index notices: no messages waiting."
