"""Two people for every deploy: a process owner submits a draft, a different process owner reviews
what changed and approves or rejects it, and only the approved content deploys."""
from __future__ import annotations

from sqlalchemy import select

from app.models import Episode, ProcessDraft, ProcessVersion, User

from .draft_site import (NEW_NAME, TASK_NAME, audit_of, content_hash, decide, deploy, draft_of, new_draft,  # noqa: F401
                         renamed, save, site, submit, versions)
from .web import csrf_token, text_of


def test_a_draft_is_submitted_approved_by_a_second_owner_then_deployed(site):
    runtime, people = site["runtime"], site["people"]
    running = runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"]).episode_id
    draft_id = renamed(site)
    page = text_of(site["owner"].get(f"/processes/drafts/{draft_id}"))
    assert "Editing" in page and "Submit for review" in page and "Deploy as a new version" not in page

    # Nothing deploys before a second owner approves it, not even a forged post.
    early = deploy(site, draft_id)
    assert early.status_code == 409 and "Submit this draft for review first" in text_of(early)
    no_note = submit(site, draft_id, note="  ")
    assert no_note.status_code == 400 and "Enter a change note" in text_of(no_note)
    assert draft_of(runtime, draft_id).review_status == "editing"

    submitted = submit(site, draft_id)
    assert submitted.status_code == 303
    digest = content_hash(runtime, draft_id)
    assert audit_of(runtime, "draft_submitted")[-1] == {
        "process_id": "caf_episode", "draft_id": draft_id, "content_hash": digest,
        "change_note": "Clearer name for the assessment task", "from_version": 1}
    own = text_of(site["owner"].get(f"/processes/drafts/{draft_id}"))
    assert "Waiting for review" in own and "You submitted this draft, so another process owner must review it" in own
    assert "Yours: another process owner reviews it" in text_of(site["owner"].get("/processes"))
    waiting = site["reviewer"].get("/processes").get_data(as_text=True)
    assert f'href="/processes/drafts/{draft_id}/review"' in waiting
    assert "Clearer name for the assessment task" in waiting
    refused = deploy(site, draft_id)
    assert refused.status_code == 409 and "waiting for review" in text_of(refused)

    # The submitter's own approval is refused and audited; an administrator never reaches it.
    self_approval = decide(site, draft_id, who="owner")
    assert self_approval.status_code == 403
    assert "You submitted this draft, so another process owner must review it" in text_of(self_approval)
    assert audit_of(runtime, "draft_approval_refused")[-1] == {
        "process_id": "caf_episode", "draft_id": draft_id, "decision": "approve", "reason": "self-review",
        "submitted_by": site["owner_id"]}
    token = csrf_token(site["admin"].get("/account").get_data(as_text=True))
    assert site["admin"].client.post(f"/processes/drafts/{draft_id}/approve",
                                     data={"csrf_token": token, "content_hash": digest}).status_code == 403
    assert draft_of(runtime, draft_id).review_status == "submitted"

    # The reviewer sees what changed, on the same comparison as between versions.
    review = site["reviewer"].get(f"/processes/drafts/{draft_id}/review")
    html, shown = review.get_data(as_text=True), text_of(review)
    assert review.status_code == 200 and "0 added, 1 changed, 0 removed" in shown
    assert "complete_assessment" in shown and "Complete the assessment with the family" in shown
    assert 'data-changed="complete_assessment"' in html and f'value="{digest}"' in html
    assert f'data-xml-url="/processes/drafts/{draft_id}/files/caf_episode.bpmn"' in html

    approved = decide(site, draft_id, comment="Reads better")
    assert approved.status_code == 303
    draft = draft_of(runtime, draft_id)
    assert (draft.review_status, draft.reviewed_by_id, draft.approved_hash) == ("approved", site["reviewer_id"], digest)
    assert audit_of(runtime, "draft_approved")[-1] == {
        "process_id": "caf_episode", "draft_id": draft_id, "content_hash": digest, "submitted_by": site["owner_id"],
        "comment": "Reads better"}
    assert "Approved" in text_of(site["owner"].get(f"/processes/drafts/{draft_id}"))

    deployed = deploy(site, draft_id)
    assert deployed.status_code == 303 and deployed.location.endswith("/processes/caf_episode/versions/2")
    with runtime.db.session() as session:
        version = session.scalar(select(ProcessVersion).where(ProcessVersion.version == 2))
        assert version.change_note == "Clearer name for the assessment task" and version.content_hash == digest
        assert version.deployed_by_id == site["owner_id"] and NEW_NAME in version.bpmn_files["caf_episode.bpmn"]
        assert session.get(Episode, running).process_version.version == 1  # open episodes stay on theirs
        approved_at = session.get(ProcessDraft, draft_id).reviewed_at.isoformat()
    draft = draft_of(runtime, draft_id)
    assert draft.status == "deployed" and draft.deployed_version_id == version.id
    assert audit_of(runtime, "process_deployed")[-1] == {
        "process_id": "caf_episode", "version": 2, "content_hash": digest, "draft_id": draft_id,
        "change_note": "Clearer name for the assessment task", "from_version": 1, "submitted_by": site["owner_id"],
        "approved_by": site["reviewer_id"], "approved_at": approved_at}

    library = text_of(site["owner"].get("/processes"))
    assert "Version 2 Current" in library and "Version 1 Current" not in library and "No draft is waiting" in library
    assert "Clearer name for the assessment task" in library and "Owen Owner" in library
    # The deployed draft is history: its page leads to the version it became.
    assert site["owner"].get(f"/processes/drafts/{draft_id}").location.endswith("/processes/caf_episode/versions/2")
    newest = site["owner"].get("/processes/caf_episode/versions/2").get_data(as_text=True)
    assert 'href="/processes/caf_episode/diff?from=1&amp;to=2"' in newest
    assert 'href="/processes/caf_episode/migrate?from=1&amp;to=2"' in newest
    assert "Migrate the 1 open episode on version 1 to this version" in text_of(site["owner"].get(
        "/processes/caf_episode/versions/2"))

    # A draft of version 1 now: the reviewer is warned, and may compare it with the current version.
    again = new_draft(site)
    stale = text_of(site["reviewer"].get(f"/processes/drafts/{again}/review"))
    assert "Version 2 was deployed after this draft was started from version 1" in stale
    assert "0 added, 0 changed, 0 removed" in stale
    against = text_of(site["reviewer"].get(f"/processes/drafts/{again}/review?against=current"))
    assert "Version 2 (the current version)" in against and "0 added, 1 changed, 0 removed" in against
    # The same content as a deployed version is nothing to review.
    same = submit(site, again, note="Back")
    assert same.status_code == 400 and "the same as version 1" in text_of(same)
    assert versions(runtime) == 2


def test_a_draft_changed_after_approval_needs_approving_again(site):
    runtime = site["runtime"]
    draft_id = renamed(site)
    assert submit(site, draft_id).status_code == 303
    assert decide(site, draft_id).status_code == 303

    # A save after approval takes the draft back to editing, and says so.
    xml = draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"].replace(NEW_NAME, 'name="Yet another name"')
    answer = save(site, draft_id, xml, draft_of(runtime, draft_id).revision)
    assert answer.json["saved"] and answer.json["withdrawn"] is True
    draft = draft_of(runtime, draft_id)
    assert (draft.review_status, draft.approved_hash) == ("editing", None)
    assert audit_of(runtime, "draft_review_withdrawn")[-1]["was"] == "approved"
    refused = deploy(site, draft_id)
    assert refused.status_code == 409 and "Submit this draft for review first" in text_of(refused)
    assert versions(runtime) == 1 and not audit_of(runtime, "process_deployed")

    # Approved again; then the content changes behind the pages' back: the deploy compares the hash.
    assert submit(site, draft_id).status_code == 303
    assert decide(site, draft_id).status_code == 303
    with runtime.db.session() as session:
        found = session.get(ProcessDraft, draft_id)
        found.bpmn_files = {**found.bpmn_files, "caf_episode.bpmn": xml.replace("Yet another name", "Sneaked in")}
    sneaked = deploy(site, draft_id)
    assert sneaked.status_code == 409 and "changed after it was approved" in text_of(sneaked)
    assert versions(runtime) == 1
    with runtime.db.session() as session:
        found = session.get(ProcessDraft, draft_id)
        found.bpmn_files = {**found.bpmn_files, "caf_episode.bpmn": xml}
    assert deploy(site, draft_id).status_code == 303 and versions(runtime) == 2


def test_a_decision_on_content_other_than_what_waits_is_refused(site):
    runtime = site["runtime"]
    draft_id = renamed(site)
    assert submit(site, draft_id).status_code == 303
    seen = content_hash(runtime, draft_id)

    # Another draft's hash, or a hash that is not the draft's any more, decides nothing.
    other = new_draft(site)
    xml = draft_of(runtime, other).bpmn_files["caf_episode.bpmn"].replace(TASK_NAME, 'name="Another name"')
    assert save(site, other, xml, 1).json["saved"] and submit(site, other, note="Another change").status_code == 303
    forged = decide(site, other, seen=seen)
    assert forged.status_code == 409 and "changed since you opened it" in text_of(forged)
    xml = draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"].replace(NEW_NAME, 'name="Later name"')
    assert save(site, draft_id, xml, draft_of(runtime, draft_id).revision).json["withdrawn"] is True
    gone = decide(site, draft_id, seen=seen)
    assert gone.status_code == 409 and "not waiting for review" in text_of(gone)
    assert submit(site, draft_id).status_code == 303
    stale = decide(site, draft_id, seen=seen)
    assert stale.status_code == 409 and "changed since you opened it" in text_of(stale)
    assert draft_of(runtime, draft_id).review_status == "submitted" and not audit_of(runtime, "draft_approved")


def test_a_rejected_draft_shows_the_reason_and_can_be_submitted_again(site):
    runtime = site["runtime"]
    draft_id = renamed(site)
    assert submit(site, draft_id).status_code == 303
    self_reject = decide(site, draft_id, "reject", who="owner", reason="Never mind")
    assert self_reject.status_code == 403 and audit_of(runtime, "draft_approval_refused")[-1]["decision"] == "reject"
    no_reason = decide(site, draft_id, "reject", reason=" ")
    assert no_reason.status_code == 400 and "Enter the reason" in text_of(no_reason)

    rejected = decide(site, draft_id, "reject", reason="Say who does it with the family")
    assert rejected.status_code == 303
    draft = draft_of(runtime, draft_id)
    assert (draft.review_status, draft.review_reason, draft.reviewed_by_id) == (
        "rejected", "Say who does it with the family", site["reviewer_id"])
    assert audit_of(runtime, "draft_rejected")[-1]["reason"] == "Say who does it with the family"
    page = text_of(site["owner"].get(f"/processes/drafts/{draft_id}"))
    assert "Rejected Say who does it with the family" in page and "Submit for review" in page
    assert "Rejected" in text_of(site["owner"].get("/processes"))
    refused = deploy(site, draft_id)
    assert refused.status_code == 409 and "was rejected" in text_of(refused) and versions(runtime) == 1

    assert submit(site, draft_id, note="Now says who").status_code == 303
    assert draft_of(runtime, draft_id).review_status == "submitted"


def test_whoever_made_the_last_change_cannot_approve_it(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    xml = draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"].replace(TASK_NAME, NEW_NAME)
    assert save(site, draft_id, xml, 1, who="reviewer").json["saved"]
    assert submit(site, draft_id).status_code == 303  # Owen submits what Pat changed
    refused = decide(site, draft_id)
    assert refused.status_code == 403 and "You made the last change to this draft" in text_of(refused)
    assert "You made the last change" in text_of(site["reviewer"].get(f"/processes/drafts/{draft_id}/review"))
    assert draft_of(runtime, draft_id).review_status == "submitted"


def test_an_approval_by_someone_no_longer_a_process_owner_deploys_nothing(site):
    runtime = site["runtime"]
    draft_id = renamed(site)
    assert submit(site, draft_id).status_code == 303 and decide(site, draft_id).status_code == 303
    with runtime.db.session() as session:
        session.get(User, site["reviewer_id"]).role = "practitioner"
    refused = deploy(site, draft_id)
    assert refused.status_code == 409 and "no longer a process owner" in text_of(refused)
    assert versions(runtime) == 1 and not audit_of(runtime, "process_deployed")
