"""A task's completion is one read transaction for the request (the session row, the account, the
policy, what the form needs) and the step's own; the next form's page is one transaction. Also
when the session's last-seen time is due to be written."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import event, select

from app.clock import now
from app.models import HumanTask
from tests.journeys import start
from tests.web import browser, csrf_token, text_of


def _task(runtime, episode_id: int, name: str) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(HumanTask.id).where(HumanTask.episode_id == episode_id, HumanTask.name == name))


class Transactions:
    """The transactions the web app's database begins, and the statements run in each."""

    def __init__(self, app):
        self.engine = app.extensions["ecaf"].db.engine
        self.begun: list[list[str]] = []
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "before_cursor_execute", self._statement)

    def _begin(self, _connection) -> None:
        self.begun.append([])

    def _statement(self, _conn, _cursor, statement, *_args) -> None:
        if self.begun and not statement.startswith("BEGIN"):
            self.begun[-1].append(statement.split(None, 6)[:6])

    def during(self, request):
        self.begun.clear()
        answer = request()
        return answer, list(self.begun)

    def remove(self) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._statement)


@pytest.fixture
def olive(web):
    client = browser(web["app"])
    client.sign_in("olive", web["secrets"]["originator"])
    counted = Transactions(web["app"])
    yield client, counted
    counted.remove()


def _complete_checklist(client, counted, task_id: int, token: str):
    done, during_post = counted.during(lambda: client.client.post(
        f"/tasks/{task_id}", data={"action": "submit", "decision": "full_caf", "csrf_token": token}))
    assert done.status_code == 302, text_of(done)
    return done, during_post


@pytest.mark.parametrize("last_seen_due", [False, True], ids=["last-seen-fresh", "last-seen-due"])
def test_a_completion_and_the_next_form_take_at_most_two_transactions(web, olive, last_seen_due):
    client, counted = olive
    runtime = web["runtime"]
    episode_id = start(runtime, web["people"])
    checklist = _task(runtime, episode_id, "pre_assessment_checklist")
    token = csrf_token(client.get(f"/tasks/{checklist}").get_data(as_text=True))
    later = now() + timedelta(seconds=31 if last_seen_due else 0)
    with time_machine.travel(later, tick=False):
        done, during_post = _complete_checklist(client, counted, checklist, token)
    assert done.location.endswith(f"/tasks/{_task(runtime, episode_id, 'obtain_consent')}")
    assert len(during_post) <= 2, during_post
    with time_machine.travel(later + timedelta(seconds=31 if last_seen_due else 0), tick=False):
        page, during_get = counted.during(lambda: client.get(done.location))
    assert page.status_code == 200 and "is complete" in text_of(page)
    assert len(during_get) <= 1, during_get


def test_the_episode_page_a_completion_may_lead_to_is_one_transaction(web, olive):
    client, counted = olive
    episode_id = start(web["runtime"], web["people"])
    client.get(f"/episodes/{episode_id}")
    with time_machine.travel(now() + timedelta(seconds=31), tick=False):
        page, during = counted.during(lambda: client.get(f"/episodes/{episode_id}"))
    assert page.status_code == 200
    assert len(during) == 1, during


def test_saving_a_draft_is_one_read_transaction_and_the_draft_step(web, olive):
    client, counted = olive
    runtime = web["runtime"]
    checklist = _task(runtime, start(runtime, web["people"]), "pre_assessment_checklist")
    token = csrf_token(client.get(f"/tasks/{checklist}").get_data(as_text=True))
    with time_machine.travel(now() + timedelta(seconds=31), tick=False):
        saved, during = counted.during(lambda: client.client.post(
            f"/tasks/{checklist}", data={"action": "save", "decision": "full_caf", "csrf_token": token}))
    assert saved.status_code == 302, text_of(saved)
    assert len(during) <= 2, during
    with runtime.db.session() as session:
        assert session.get(HumanTask, checklist).draft["data"]["decision"] == "full_caf"
