"""Claims, leases and what a success wakes, against real local servers: a deliverer that died
mid-call is recovered after its lease without a second email at Notify and with the same key at
the index and the mail server; deliverers racing over the same messages send each once; a
channel answering again wakes only the messages its own failure held back; no credentials or
query of an index URL reach a reason, a page or a log. The clock is moved, never waited for."""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine

from app import outbox
from app.clock import now
from app.jobs import channels, delivery
from app.jobs.channels import breaker
from app.jobs.channels.redact import safe_url, without_secrets
from app.jobs.channels.smtp import message_id_for
from app.jobs.delivery import DeliveryFailed, deliver, due_messages
from app.models import OutboxMessage
from app.services import system_status

from .channel_servers import (closed_port, index_endpoint, index_notice, message_row,  # noqa: F401
                              no_failing_channels, smtp_server, write_message)
from .conftest import local_http_server
from .test_notify import API_KEY, TEMPLATE, PlayingNotify


def _deliver(runtime, message_id):
    return deliver(runtime.db, runtime.config, message_id)


def _die_mid_call(runtime, message_id, *, reached: bool) -> None:
    """A deliverer claims the message and dies during the call (after the receiver took it, or before)."""
    claim = delivery._claim(runtime.db, runtime.config, message_id)
    assert isinstance(claim, delivery._Claim)
    if reached:
        channels.send(runtime.config, claim.message)


def _recovered_after_the_lease(runtime, message_id) -> None:
    row = message_row(runtime, message_id)
    assert row.status == "sending" and row.attempts == 1
    assert _deliver(runtime, message_id) == "sending", "within its lease nobody else tries it"
    assert message_id not in due_messages(runtime.db)
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        assert message_id in due_messages(runtime.db), "the sweep finds it once the lease is over"
        assert _deliver(runtime, message_id) == "sent"
    assert message_row(runtime, message_id).attempts == 2


@pytest.mark.parametrize("reached", [True, False])
def test_a_deliverer_dead_mid_call_to_notify_is_recovered_by_asking_first(runtime, reached):
    with local_http_server(PlayingNotify) as notify:
        notify.answers, notify.accepted, notify.hold, notify.on_accept, notify.lookups = [], [], None, None, []
        runtime.config = replace(runtime.config, notify_api_key=API_KEY, notify_email_template_id=TEMPLATE,
                                 notify_base_url=f"http://127.0.0.1:{notify.server_address[1]}")
        message_id = write_message(runtime, key=f"died-{reached}")
        _die_mid_call(runtime, message_id, reached=reached)
        _recovered_after_the_lease(runtime, message_id)
    assert notify.accepted == [f"died-{reached}"], "Notify has it once, whether or not the dead call reached it"
    assert [q["reference"] for q in notify.lookups] == [[f"died-{reached}"]]


def test_a_deliverer_dead_mid_call_to_the_index_is_recovered_with_the_same_key(runtime, index_endpoint):
    message_id = index_notice(runtime, index_endpoint, "index-died")
    _die_mid_call(runtime, message_id, reached=True)
    _recovered_after_the_lease(runtime, message_id)
    assert [key for key, _, _ in index_endpoint.posts] == ["index-died", "index-died"], \
        "sent again with the same Idempotency-Key: the endpoint drops the repeat"


def test_a_deliverer_dead_mid_call_to_the_mail_server_is_recovered_with_the_same_message_id(runtime):
    with smtp_server() as (mail, port):
        runtime.config = replace(runtime.config, smtp_host="127.0.0.1", smtp_port=port)
        message_id = write_message(runtime, key="smtp:died")
        _die_mid_call(runtime, message_id, reached=True)
        _recovered_after_the_lease(runtime, message_id)
    ids = [line for text in mail.received for line in text.splitlines() if line.startswith("Message-ID:")]
    assert ids == [f"Message-ID: {message_id_for('smtp:died')}"] * 2, "at least once, with one Message-ID to drop the repeat by"


def test_deliverers_racing_over_the_same_messages_send_each_once(runtime, index_endpoint):
    keys = [f"race-{n}" for n in range(12)]
    ids = [index_notice(runtime, index_endpoint, key) for key in keys]
    errors = []

    def sweep():
        try:
            for message_id in ids:
                _deliver(runtime, message_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    racers = [threading.Thread(target=sweep) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert errors == []
    assert sorted(key for key, _, _ in index_endpoint.posts) == sorted(keys), "each sent once"
    assert {message_row(runtime, m).status for m in ids} == {"sent"}
    assert {message_row(runtime, m).attempts for m in ids} == {1}


# ---------------------------------------------------------------- what a success wakes

def test_an_index_host_answering_again_wakes_its_own_notices_only(runtime, index_endpoint):
    from .channel_servers import ScriptedIndex

    with local_http_server(ScriptedIndex) as other, time_machine.travel(now(), tick=False) as clock:
        other.status, other.script, other.headers, other.tries, other.poison = 503, [], {}, 0, set()
        other.request_ids, other.posts = [], []
        other.url = f"http://127.0.0.1:{other.server_address[1]}/notices"
        index_endpoint.status = 503
        mine = [index_notice(runtime, index_endpoint, f"mine-{n}") for n in range(3)]
        theirs = index_notice(runtime, other, "theirs")
        for message_id in [*mine, theirs]:
            try:
                _deliver(runtime, message_id)
            except DeliveryFailed:
                pass
        waits = {m: message_row(runtime, m).next_attempt_at for m in [*mine, theirs]}
        assert all(wait > now() for wait in waits.values())

        index_endpoint.status = 202
        clock.shift(timedelta(seconds=2))  # the first host's wait is over; the other keeps answering 503
        newcomer = index_notice(runtime, index_endpoint, "mine-new")
        assert _deliver(runtime, newcomer) == "sent"
        assert [message_row(runtime, m).status for m in mine] == ["sent"] * 3, "held back by their host: woken"
        assert message_row(runtime, theirs).next_attempt_at == waits[theirs], "another host's notice keeps its wait"
    assert other.tries == 1


def test_a_retry_after_is_kept_when_another_worker_sees_the_channel_answer(runtime, index_endpoint):
    with time_machine.travel(now(), tick=False):
        index_endpoint.script, index_endpoint.headers = [429], {"Retry-After": "20"}
        asked_to_wait = index_notice(runtime, index_endpoint, "asked-to-wait")
        with pytest.raises(DeliveryFailed, match="429"):
            _deliver(runtime, asked_to_wait)
        index_endpoint.headers = {}
        breaker.forget_all()  # another worker process, which never saw the 429, delivers the next notice
        assert _deliver(runtime, index_notice(runtime, index_endpoint, "elsewhere")) == "sent"
        row = message_row(runtime, asked_to_wait)
        assert row.status == "pending" and row.next_attempt_at == now() + timedelta(seconds=20)


# ---------------------------------------------------------------- secrets in an index URL

SECRET_URL_PARTS = ("s3cret", "token=", "abc123", "user:")


@pytest.mark.parametrize("answer", ["503", "redirect", "refused"])
def test_no_credentials_or_query_of_the_index_url_reach_a_reason_a_page_or_a_log(runtime, index_endpoint, caplog,
                                                                                  answer):
    port = closed_port() if answer == "refused" else index_endpoint.server_address[1]
    url = f"http://user:s3cret@127.0.0.1:{port}/notices?token=abc123"
    index_endpoint.status = 301 if answer == "redirect" else 503
    index_endpoint.headers = {"Location": "https://bob:s3cret@elsewhere.test/n?token=abc123"} if answer == "redirect" else {}
    message_id = write_message(runtime, channel="index", recipient=url, key=f"secret-{answer}", payload={"n": 1})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryFailed) as failure:
        _deliver(runtime, message_id)
    if answer != "refused":
        assert index_endpoint.posts[0][1:] == ("/notices?token=abc123", "Basic dXNlcjpzM2NyZXQ="), "the URL is used"
    row = message_row(runtime, message_id)
    with runtime.db.session() as session:
        [index] = [c for c in system_status.channels(session) if c.channel == "index"]
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("app."))
    for shown in (row.last_error, str(failure.value), index.retry_error or "", logged):
        assert not any(part in shown for part in SECRET_URL_PARTS), shown
    assert ("127.0.0.1" in row.last_error) == (answer == "refused") and "index endpoint" in row.last_error


def test_urls_lose_their_credentials_and_query_wherever_they_appear():
    assert safe_url("https://user:pa%40ss@index.example:8443/v1/notices?token=x#frag") == \
        "https://index.example:8443/v1/notices"
    text = ("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /notices?token=x&b=2 "
            "(Caused by NewConnectionError), see https://u:p@h.example/a?k=v or ftp://anon@files.example/x.")
    assert without_secrets(text) == ("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
                                     "/notices (Caused by NewConnectionError), see https://h.example/a or "
                                     "ftp://files.example/x.")
    assert without_secrets("Can't send to this recipient? port=443") == "Can't send to this recipient? port=443"


# ---------------------------------------------------------------- what counts a message being sent

def test_a_message_being_sent_counts_as_waiting_and_is_not_discarded_mid_call(runtime, index_endpoint):
    message_id = index_notice(runtime, index_endpoint, "mid-call")
    delivery._claim(runtime.db, runtime.config, message_id)  # a deliverer's call is under way
    with runtime.db.session() as session:
        [index] = [c for c in system_status.channels(session) if c.channel == "index"]
        assert index.pending == 1
        with pytest.raises(ValueError, match="being sent at this moment"):
            outbox.discard_message(session, session.get(OutboxMessage, message_id))
    with time_machine.travel(message_row(runtime, message_id).next_attempt_at + timedelta(seconds=1), tick=False):
        with runtime.db.session() as session:  # the claim ran out: its deliverer is gone, and it can be discarded
            outbox.discard_message(session, session.get(OutboxMessage, message_id))
        assert _deliver(runtime, message_id) == "discarded"
    assert index_endpoint.posts == []
