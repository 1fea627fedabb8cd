"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

The process library. Process owners create, edit, validate, submit, review and deploy drafts;
administrators of any authority read the library and its versions (GET) but are refused every
change, every draft page and every review decision; everyone else is refused. `seed(runtime, world)` opens two drafts of the deployed
version as the owner actor: one the cases edit, one they remove a form from and then discard.
Without it the cases use a draft id that does not exist, which the owner gets as 404.
"""
from __future__ import annotations

from app.models import ProcessVersion, User
from app.services import process_drafts

MISSING = 999999


def seed(runtime, world: dict) -> None:
    with runtime.db.session() as session:
        owner = session.get(User, world["users"]["owner"])
        version = session.query(ProcessVersion).filter_by(process_id="caf_episode", version=1).one()
        world["drafts"] = {"edited": process_drafts.create_draft(session, version, owner).id,
                           "discarded": process_drafts.create_draft(session, version, owner).id}


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, ANONYMOUS and ADMINS."""
    Case, by_role, ADMINS, ANONYMOUS = rules.Case, rules.by_role, rules.ADMINS, rules.ANONYMOUS
    seeded = world.get("drafts") or {}
    edited, discarded = seeded.get("edited", MISSING), seeded.get("discarded", MISSING)
    readers, owners = ADMINS | {"owner"}, {"owner"}

    def owner_rule(ok: int):
        """A draft's page or action: the owner gets `ok` (404 without a seeded draft), others 403."""
        def expect(actor: str) -> int:
            if actor == ANONYMOUS:
                return 302
            if actor == "owner":
                return ok if seeded else 404
            return 403
        return expect

    version = "/processes/caf_episode/versions/1"
    draft = f"/processes/drafts/{edited}"
    spare = f"/processes/drafts/{discarded}"
    return {
        "process_library.index": [Case("GET", "/processes", by_role(readers))],
        "process_guide.guide": [Case("GET", "/processes/expressions", by_role(readers))],
        "process_library.version": [Case("GET", version, by_role(readers))],
        "process_library.version_file": [Case("GET", f"{version}/files/caf_episode.bpmn", by_role(readers)),
                                         Case("GET", f"{version}/files/forms/consent.schema.json", by_role(readers))],
        "process_library.version_zip": [Case("GET", f"{version}.zip", by_role(readers))],
        "process_library.version_form": [Case("GET", f"{version}/forms/consent.schema.json", by_role(readers))],
        # The owner opens a third draft here: the seeded ones are not touched.
        "process_library.create_draft": [Case("POST", f"{version}/draft", by_role(owners, ok=303), {})],
        "process_library.new_draft": [Case("POST", "/processes/drafts", by_role(owners, ok=400), {})],
        "process_library.draft": [Case("GET", draft, owner_rule(200))],
        "process_library.draft_file": [Case("GET", f"{draft}/files/caf_episode.bpmn", owner_rule(200))],
        "process_library.draft_zip": [Case("GET", f"{draft}.zip", owner_rule(200))],
        "process_library.save_bpmn": [Case("POST", f"{draft}/bpmn", owner_rule(409), {})],
        "process_library.validate": [Case("POST", f"{draft}/validate", owner_rule(200), {})],
        "process_library.upload": [Case("POST", f"{draft}/upload", owner_rule(400), {})],
        "process_library.add_form": [Case("POST", f"{draft}/forms", owner_rule(409), {})],
        "process_library.form_editor": [Case("GET", f"{draft}/forms/consent.schema.json", owner_rule(200)),
                                        Case("POST", f"{draft}/forms/consent.schema.json", owner_rule(400), {})],
        "process_library.form_preview": [Case("POST", f"{draft}/forms/consent.schema.json/preview", owner_rule(200),
                                              {})],
        "process_library.task_form": [Case("GET", f"{draft}/tasks/obtain_consent/form", owner_rule(200)),
                                      Case("POST", f"{draft}/tasks/obtain_consent/form", owner_rule(400), {})],
        # Without a revision, or for a draft nobody submitted, each is refused as a conflict, changing nothing.
        "process_library.submit": [Case("POST", f"{draft}/submit", owner_rule(409), {})],
        "process_library.review_draft": [Case("GET", f"{draft}/review", owner_rule(200))],
        "process_library.approve": [Case("POST", f"{draft}/approve", owner_rule(409), {})],
        "process_library.reject": [Case("POST", f"{draft}/reject", owner_rule(409), {})],
        "process_library.deploy": [Case("POST", f"{draft}/deploy", owner_rule(409), {})],
        "process_library.remove_file": [Case("POST", f"{spare}/files/forms/consent.uischema.json/remove",
                                             owner_rule(303), {"revision": "1"})],
        "process_library.discard": [Case("POST", f"{spare}/discard", owner_rule(303), {})],
    }
