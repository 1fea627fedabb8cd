"""Messages for the next page ("“Pre-assessment checklist” is complete") travel sealed in a cookie of
their own, for the account that caused them and for five minutes: a completion and the page after it
write nothing to the session's row to say so, and a forged, altered, stale or borrowed cookie shows nothing."""
from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import event, select

from app.clock import now
from app.models import HumanTask, WebSession
from app.web import flash_messages
from tests.journeys import start
from tests.web import browser, csrf_token, text_of

COOKIE = flash_messages.cookie_name(True)  # tests run as production does: Secure cookies
SAID = "is complete"


def _checklist(runtime, episode_id: int) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask.id).where(HumanTask.episode_id == episode_id,
                                                         HumanTask.name == "pre_assessment_checklist"))


def _complete_checklist(client, task_id: int):
    page = client.get(f"/tasks/{task_id}")
    done = client.client.post(f"/tasks/{task_id}", data={"action": "submit", "decision": "full_caf",
                                                         "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 302, text_of(done)
    return done


def _session_row_writes(runtime) -> list[str]:
    writes: list[str] = []
    event.listen(runtime.db.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: writes.append(statement)
                 if statement.lstrip().upper().startswith("UPDATE WEB_SESSION") else None)
    return writes


def test_a_completion_says_so_on_the_next_page_without_writing_the_session_row(web):
    runtime = web["runtime"]
    task_id = _checklist(runtime, start(runtime, web["people"]))
    client = browser(web["app"])
    client.sign_in("olive", web["secrets"]["originator"])
    client.get("/")
    writes = _session_row_writes(runtime)
    done = _complete_checklist(client, task_id)
    sealed = client.client.get_cookie(COOKIE)
    assert sealed is not None and SAID not in sealed.value and "checklist" not in sealed.value.lower()
    shown = client.get(done.location)
    assert SAID in text_of(shown)
    assert SAID not in text_of(client.get(done.location)), "shown once"
    assert client.client.get_cookie(COOKIE) is None
    assert writes == [], "the message never touched the session's row"
    with runtime.db.session() as session:
        assert all("_flashes" not in (row.data or {}) for row in session.scalars(select(WebSession)))


def test_an_altered_a_stale_or_another_accounts_message_shows_nothing(web):
    runtime = web["runtime"]
    task_id = _checklist(runtime, start(runtime, web["people"]))
    olive = browser(web["app"])
    olive.sign_in("olive", web["secrets"]["originator"])
    done = _complete_checklist(olive, task_id)
    sealed = olive.client.get_cookie(COOKIE).value

    leah = browser(web["app"])
    leah.sign_in("leah", web["secrets"]["lead"])
    leah.client.set_cookie(COOKIE, sealed)
    assert SAID not in text_of(leah.get("/")), "sealed for another account"
    leah.client.set_cookie(COOKIE, sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))
    assert leah.get("/").status_code == 200
    assert SAID not in text_of(leah.get("/"))

    with time_machine.travel(now() + timedelta(seconds=flash_messages.LIFETIME_SECONDS + 5)):
        assert SAID not in text_of(olive.get(done.location)), "kept five minutes at most"


def test_signing_out_says_so_on_the_sign_in_page(web):
    client = browser(web["app"])
    client.sign_in("olive", web["secrets"]["originator"])
    out = client.post("/sign-out", token_from="/account")
    assert out.status_code == 302
    assert "You have signed out." in text_of(client.get(out.location))


def test_a_restarted_sign_in_drops_waiting_messages_as_it_drops_the_rest():
    from app.web.sessions import ServerSession

    session = ServerSession()
    session["_flashes"] = [("success", "for whoever was here before")]
    session.flashes_changed = False
    session.clear()  # the password step starts the session again
    assert "_flashes" not in session and session.flashes_changed
    session["_flashes"] = [("success", "kept across sign-in")]
    session.sign_in(7)
    assert session.get("_flashes") == [("success", "kept across sign-in")]
