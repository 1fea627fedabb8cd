"""An episode's operations for its administrator: a page per part, a page per repair, an "Are you
sure?" page before closing, deleting or a bulk action, times typed in UK time, and the grouped menu."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from sqlalchemy import select

import handlers
from app.clock import as_utc, now
from app.engine import repair
from app.models import AuditEvent, Episode, OutboxMessage
from app.uk_time import from_uk_time
from app.web.layout import menu, text_or_time

from .conftest import complete
from .journeys import CHECKLIST, CONSENT, assessment, prepare
from .test_admin_episodes import _admin_client, _audited, _episode, _errored, _second_child
from .web import text_of


def _page(client, path: str):
    response = client.get(path)
    assert response.status_code == 200, path
    return response


# ---------------------------------------------------------------- the parts of the page

def test_each_part_of_the_operations_page_is_its_own_page(runtime, people):
    episode_id = _errored(runtime, people)
    client = _admin_client(runtime, people)
    base = f"/admin/episodes/{episode_id}"

    summary = text_of(_page(client, base))
    assert "Failed step" in summary and "Record the lead professional" in summary
    assert "Retry the failed step" in summary and "Close the episode" in summary
    assert "Time (UTC)" not in summary and "Reason" not in summary, "no repair form on the summary"

    tasks = _page(client, f"{base}/tasks")
    assert 'data-label="Status"' in tasks.get_data(as_text=True) and "lead professional" in text_of(tasks)
    assert "No timer is waiting" in text_of(_page(client, f"{base}/timers"))
    assert _page(client, f"{base}/messages").status_code == 200

    data = _page(client, f"{base}/data").get_data(as_text=True)
    assert "govuk-summary-list" in data and "The raw data" in data
    assert "Lead professional email" in data, "keys read as words"
    assert "<details" in data, "raw JSON only inside a collapsed details element"
    assert "Caf due at" in data and " at " in text_of(client.get(f"{base}/data")).split("Caf due at", 1)[1][:40], \
        "a time in the data reads as a UK date and time"

    history = text_of(_page(client, f"{base}/history"))
    assert "Episode operations viewed" in history and "Part: data" in history
    assert client.get(f"{base}/nothing").status_code == 404
    current = client.get(f"{base}/timers").get_data(as_text=True)
    assert 'aria-current="page">Timers' in current


# ---------------------------------------------------------------- are you sure?

def test_closing_asks_are_you_sure_with_a_reason_then_closes(runtime, people):
    episode_id = prepare(runtime, people)
    client = _admin_client(runtime, people)
    page = _page(client, f"/admin/episodes/{episode_id}/repair/terminate").get_data(as_text=True)
    assert "Are you sure you want to close this episode?" in page
    assert "govuk-warning-text" in page and "govuk-button--warning" in page and ">Cancel</a>" in page
    assert "its waiting tasks and time limits are cancelled" in page

    form = {"action": "terminate", "outcome": "moved_away", "reason": ""}
    refused = client.post(f"/admin/episodes/{episode_id}/repair", form,
                          token_from=f"/admin/episodes/{episode_id}/repair/terminate")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Enter the reason" in text_of(refused)
    assert "Are you sure you want to close this episode?" in html, "the same page, with the error"
    assert '<option value="moved_away" selected>' in html, "what was chosen is kept"
    assert _episode(runtime, episode_id).status == "open"

    done = client.post(f"/admin/episodes/{episode_id}/repair", {**form, "reason": "Family moved to Leeds"},
                       token_from=f"/admin/episodes/{episode_id}/repair/terminate")
    assert done.status_code == 302
    assert (_episode(runtime, episode_id).status, _episode(runtime, episode_id).outcome) == ("closed", "moved_away")
    assert _audited(runtime, "repair_terminate", episode_id)[0].detail["reason"] == "Family moved to Leeds"
    summary = text_of(client.get(f"/admin/episodes/{episode_id}"))
    assert "Close the episode" not in summary, "a closed episode offers no closing"


def test_deleting_asks_are_you_sure_with_a_reason_then_deletes(runtime, people):
    episode_id = prepare(runtime, people)
    client = _admin_client(runtime, people)
    page_path = f"/admin/episodes/{episode_id}/repair/delete"
    page = _page(client, page_path).get_data(as_text=True)
    assert "Are you sure you want to delete this episode?" in page and "Deleting cannot be undone" in page
    assert 'name="confirm" value="yes"' in page and "govuk-button--warning" in page

    refused = client.post(f"/admin/episodes/{episode_id}/repair", {"action": "delete", "confirm": "yes",
                                                                    "reason": "   "}, token_from=page_path)
    assert refused.status_code == 400 and "Enter the reason" in text_of(refused)
    assert "Are you sure you want to delete this episode?" in refused.get_data(as_text=True)
    elsewhere = client.post(f"/admin/episodes/{episode_id}/repair", {"action": "delete", "reason": "No consent"},
                            token_from=page_path)
    assert elsewhere.status_code == 400 and "Are you sure" in text_of(elsewhere)
    assert _episode(runtime, episode_id).status == "open", "nothing changed"

    done = client.post(f"/admin/episodes/{episode_id}/repair", {"action": "delete", "confirm": "yes",
                                                                 "reason": "Created without consent"},
                       token_from=page_path)
    assert done.status_code == 302
    assert _episode(runtime, episode_id).status == "deleted"
    assert _audited(runtime, "repair_delete", episode_id)[0].detail["reason"] == "Created without consent"


def test_a_bulk_retry_asks_are_you_sure_with_a_reason(runtime, people, monkeypatch):
    real = handlers.OPERATORS["index/notify"]
    monkeypatch.setitem(handlers.OPERATORS, "index/notify",
                        lambda ctx, **params: (_ for _ in ()).throw(ConnectionError("index unavailable")))
    failed = []
    for family in ("First", "Second", "Third"):
        child_id = _second_child(runtime, people, family)
        episode_id = runtime.engine.start_episode(child_id=child_id, originator_id=people["originator"]).episode_id
        complete(runtime, episode_id, "pre_assessment_checklist", CHECKLIST)
        complete(runtime, episode_id, "obtain_consent", CONSENT)
        complete(runtime, episode_id, "complete_assessment", assessment())
        failed.append(episode_id)
    monkeypatch.setitem(handlers.OPERATORS, "index/notify", real)
    client = _admin_client(runtime, people)

    preview = _page(client, "/admin/episodes/bulk?show=errored&action=retry").get_data(as_text=True)
    assert "3 episodes will change" in preview and "/admin/episodes/bulk/confirm?" in preview
    assert 'name="reason"' not in preview, "the reason is asked on the confirmation page"
    confirm = _page(client, "/admin/episodes/bulk/confirm?show=errored&action=retry").get_data(as_text=True)
    assert "Are you sure you want to retry 3 episodes?" in confirm
    assert "govuk-warning-text" in confirm and "govuk-button--warning" in confirm and ">Cancel</a>" in confirm

    refused = client.post("/admin/episodes/bulk", {"show": "errored", "action": "retry", "confirm": "yes",
                                                   "reason": ""}, token_from="/admin/episodes/bulk?show=errored")
    assert refused.status_code == 400 and "Enter the reason for this bulk action" in text_of(refused)
    assert "Are you sure you want to retry 3 episodes?" in refused.get_data(as_text=True)
    assert {_episode(runtime, e).status for e in failed} == {"error"}

    done = client.post("/admin/episodes/bulk", {"show": "errored", "action": "retry", "confirm": "yes",
                                                "reason": "The index is back"},
                       token_from="/admin/episodes/bulk?show=errored")
    assert done.status_code == 302
    assert {_episode(runtime, e).status for e in failed} == {"open"}
    with runtime.db.session() as session:
        (row,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "bulk_retry")).all()
        assert row.detail["reason"] == "The index is back" and row.detail["done"] == 3


def test_a_message_is_discarded_from_its_own_page_with_a_reason(runtime, people):
    from app.outbox import queue_email

    episode_id = prepare(runtime, people)
    with runtime.db.session() as session:
        message = queue_email(session, kind="review_reminder", recipient="someone@testshire.test",
                              subject="Review due", body="A review is due.", key="test-discard",
                              episode_id=episode_id)
        message.status, message.attempts, message.last_error = "failed", 5, "mailbox full"
        message_id = message.id
    client = _admin_client(runtime, people)
    listing = _page(client, f"/admin/episodes/{episode_id}/messages").get_data(as_text=True)
    assert f"/admin/messages/{message_id}" in listing and 'name="reason"' not in listing
    page = _page(client, f"/admin/messages/{message_id}").get_data(as_text=True)
    assert "A discarded message is never sent" in page and "mailbox full" in page

    refused = client.post(f"/admin/messages/{message_id}", {"action": "discard", "reason": ""},
                          token_from=f"/admin/messages/{message_id}")
    assert refused.status_code == 400 and "Enter the reason" in text_of(refused)
    done = client.post(f"/admin/messages/{message_id}", {"action": "discard", "reason": "Wrong address"},
                       token_from=f"/admin/messages/{message_id}")
    assert done.status_code == 302 and done.location.endswith(f"/admin/episodes/{episode_id}/messages")
    with runtime.db.session() as session:
        assert session.get(OutboxMessage, message_id).status == "discarded"
    assert _audited(runtime, "message_discard", episode_id)[0].detail["reason"] == "Wrong address"


# ---------------------------------------------------------------- UK time

def test_times_in_task_data_read_in_uk_time():
    assert text_or_time("2027-07-01T08:00:00+00:00") == "1 July 2027 at 9am"
    assert text_or_time("2027-01-15") == "2027-01-15" and text_or_time("Not a time at all") == "Not a time at all"


def test_uk_time_is_british_summer_time_in_summer_and_gmt_in_winter():
    assert from_uk_time(date(2027, 7, 1), time(9, 0)) == datetime(2027, 7, 1, 8, 0, tzinfo=timezone.utc)
    assert from_uk_time(date(2027, 1, 15), time(9, 0)) == datetime(2027, 1, 15, 9, 0, tzinfo=timezone.utc)


def test_a_time_limit_is_moved_to_a_time_typed_in_uk_time_and_shown_in_it(runtime, people):
    episode_id = prepare(runtime, people)
    client = _admin_client(runtime, people)
    with runtime.db.session() as session:
        (timer,) = [t for t in repair.waiting_timers(runtime.engine, session.get(Episode, episode_id))
                    if t.name == "35-day limit"]
    page_path = f"/admin/episodes/{episode_id}/repair/extend"
    page = _page(client, page_path).get_data(as_text=True)
    assert "Time (UK time)" in page and "UTC" not in page

    summer = now().year + 1
    bad_time = client.post(f"/admin/episodes/{episode_id}/repair",
                           {"action": "extend", "timer": timer.task_id, "reason": "Family in hospital",
                            "new_due-day": "1", "new_due-month": "7", "new_due-year": str(summer),
                            "new_due_time": "9 o'clock"}, token_from=page_path)
    html = bad_time.get_data(as_text=True)
    assert bad_time.status_code == 400 and "Enter the time like 17:00" in html
    assert 'id="new-due-time-error"' in html and 'value="Family in hospital"' not in html
    assert "Family in hospital</textarea>" in html, "the reason typed is kept"

    moved = client.post(f"/admin/episodes/{episode_id}/repair",
                        {"action": "extend", "timer": timer.task_id, "reason": "Family in hospital",
                         "new_due-day": "1", "new_due-month": "7", "new_due-year": str(summer),
                         "new_due_time": "09:00"}, token_from=page_path)
    assert moved.status_code == 302
    (row,) = _audited(runtime, "repair_extend_deadline", episode_id)
    assert row.detail["new_due"] == datetime(summer, 7, 1, 8, 0, tzinfo=timezone.utc).isoformat(), \
        "09:00 in July is British Summer Time: 08:00 UTC"
    assert as_utc(_episode(runtime, episode_id).next_timer_at) == datetime(summer, 7, 1, 8, 0, tzinfo=timezone.utc)
    assert f"1 July {summer} at 9am" in text_of(client.get(f"/admin/episodes/{episode_id}/timers")), \
        "shown in the UK time it was typed in"


# ---------------------------------------------------------------- the menu

class _User:
    def __init__(self, role: str):
        self.role = role


def test_the_administrators_menu_groups_accounts_with_vetting():
    entries, pages = menu(_User("administrator"), "vetting.index")
    active = [e["label"] for e in entries if e["active"]]
    assert active == ["Accounts"]
    assert [(p["label"], p["active"]) for p in pages] == [("Accounts", False), ("Applications", False),
                                                         ("Vetting and training", True)]
    entries, pages = menu(_User("administrator"), "admin.episode_tab")
    assert [e["label"] for e in entries if e["active"]] == ["Episodes"] and pages[0]["active"]
    labels = [e["label"] for e in menu(_User("administrator"), "tasks.home")[0]]
    assert "Audit trail" not in labels and "Reports" in labels, "the audit trail is with the reports"
    practitioner, pages = menu(_User("practitioner"), "national_index.search")
    assert [e["label"] for e in practitioner if e["active"]] == ["Is there a CAF?"] and pages == []


def test_the_grouped_menu_on_a_page(runtime, people):
    client = _admin_client(runtime, people)
    html = _page(client, "/accounts/vetting").get_data(as_text=True)
    assert 'aria-label="Accounts pages"' in html
    assert 'aria-current="page">Vetting and training</a>' in html


def test_references_on_the_operations_page_are_kept_on_one_line(runtime, people):
    episode_id = prepare(runtime, people)
    client = _admin_client(runtime, people)
    html = client.get(f"/admin/episodes/{episode_id}").get_data(as_text=True)
    assert f'<span class="ecaf-reference">TST-{episode_id:06d}</span>' in html
