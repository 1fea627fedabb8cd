"""The process library's route tests share this: an app with two process owners ("owner" and
"reviewer"), an administrator and a practitioner signed in, and helpers for drafts and their review."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from app.clock import now
from app.engine.library import Bundle
from app.models import AuditEvent, ProcessDraft, ProcessVersion, User

from .conftest import VETTED
from .web import browser, csrf_token, give_credentials, make_app, text_of

TASK_NAME = 'name="Complete and submit the assessment"'
NEW_NAME = 'name="Complete the assessment with the family"'


@pytest.fixture
def site(runtime, people):
    """Signed-in clients: process owners "owner" (Owen) and "reviewer" (Pat), "admin" and "practitioner"."""
    with runtime.db.session() as session:
        school = session.get(User, people["originator"]).organisation_id
        owners = [User(username=username, email=f"{username}@testshire.test", full_name=name, role="process_owner",
                       organisation_id=school, created_at=now(), **VETTED)
                  for username, name in (("owen", "Owen Owner"), ("pat", "Pat Quinn"))]
        session.add_all(owners)
        session.flush()
        owner_id, reviewer_id = owners[0].id, owners[1].id
    app = make_app(runtime)
    _stand_in_migration_pages(app)
    clients = {}
    for name, user_id, username in (("owner", owner_id, "owen"), ("reviewer", reviewer_id, "pat"),
                                    ("admin", people["admin"], "adam"),
                                    ("practitioner", people["originator"], "olive")):
        client = browser(app)
        client.sign_in(username, give_credentials(runtime, user_id))
        clients[name] = client
    return {"runtime": runtime, "people": people, "owner_id": owner_id, "reviewer_id": reviewer_id, **clients}


def _stand_in_migration_pages(app) -> None:
    """The diff and migration pages' addresses, so the links to them show whether or not they exist yet."""
    for endpoint, rule in (("process_migrations.diff", "/processes/<process_id>/diff"),
                           ("process_migrations.plan", "/processes/<process_id>/migrate")):
        if endpoint not in app.view_functions:
            def stand_in(process_id):
                return ""
            stand_in.access = frozenset({"process_owner"})
            app.add_url_rule(rule, endpoint=endpoint, view_func=stand_in)


def new_draft(site, who: str = "owner") -> int:
    answer = site[who].post("/processes/caf_episode/versions/1/draft", token_from="/processes")
    assert answer.status_code == 303, text_of(answer)
    return int(re.search(r"/drafts/(\d+)", answer.location).group(1))


def draft_of(runtime, draft_id: int) -> ProcessDraft:
    with runtime.db.session() as session:
        return session.get(ProcessDraft, draft_id)


def save(site, draft_id: int, xml: str, revision, file: str = "caf_episode.bpmn", who: str = "owner"):
    token = csrf_token(site[who].get(f"/processes/drafts/{draft_id}").get_data(as_text=True))
    return site[who].client.post(f"/processes/drafts/{draft_id}/bpmn", json={
        "file": file, "xml": xml, "revision": revision}, headers={"X-CSRFToken": token})


def renamed(site, who: str = "owner") -> int:
    """A draft with the assessment task renamed: a change worth deploying."""
    draft_id = new_draft(site, who)
    xml = draft_of(site["runtime"], draft_id).bpmn_files["caf_episode.bpmn"].replace(TASK_NAME, NEW_NAME)
    assert save(site, draft_id, xml, 1, who=who).json["saved"]
    return draft_id


def versions(runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count()).select_from(ProcessVersion))


def audit_of(runtime, action: str) -> list[dict]:
    """Each row's detail, less the request it was written in (every web request's rows carry one)."""
    with runtime.db.session() as session:
        return [{k: v for k, v in (e.detail or {}).items() if k != "request_ref"}
                for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                         .order_by(AuditEvent.id))]


def upload(site, draft_id: int, name: str, content: bytes, revision=None):
    revision = revision if revision is not None else draft_of(site["runtime"], draft_id).revision
    return site["owner"].post(f"/processes/drafts/{draft_id}/upload",
                              {"file": (io.BytesIO(content), name), "revision": str(revision)},
                              token_from=f"/processes/drafts/{draft_id}", content_type="multipart/form-data")


def content_hash(runtime, draft_id: int) -> str:
    found = draft_of(runtime, draft_id)
    return Bundle(found.bpmn_files, found.forms).content_hash


def submit(site, draft_id: int, note: str = "Clearer name for the assessment task", who: str = "owner"):
    revision = draft_of(site["runtime"], draft_id).revision
    return site[who].post(f"/processes/drafts/{draft_id}/submit", {"change_note": note, "revision": str(revision)},
                          token_from=f"/processes/drafts/{draft_id}")


def decide(site, draft_id: int, decision: str = "approve", who: str = "reviewer", seen: str | None = None,
           **fields):
    """Approve or reject as posted from the review page, for the content hash seen there."""
    seen = seen if seen is not None else content_hash(site["runtime"], draft_id)
    return site[who].post(f"/processes/drafts/{draft_id}/{decision}", {"content_hash": seen, **fields},
                          token_from=f"/processes/drafts/{draft_id}/review")


def deploy(site, draft_id: int, who: str = "owner"):
    revision = draft_of(site["runtime"], draft_id).revision
    return site[who].post(f"/processes/drafts/{draft_id}/deploy", {"revision": str(revision)},
                          token_from=f"/processes/drafts/{draft_id}")
