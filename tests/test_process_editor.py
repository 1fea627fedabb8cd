"""Process owners edit the process in the browser: drafts, saving the modeler's XML, forms,
uploads, validation, and who may do which. Submitting, reviewing and deploying: test_draft_review.py."""
from __future__ import annotations

import io
import json
import re
import zipfile

from sqlalchemy import select

from app.engine.library import Bundle
from app.models import ProcessVersion

from .draft_site import NEW_NAME, TASK_NAME, audit_of, draft_of, new_draft, save, site, upload, versions  # noqa: F401
from .web import csrf_token, text_of

# ---------------------------------------------------------------- the library


def test_the_library_lists_versions_with_their_open_episodes_and_drafts(site):
    runtime, people = site["runtime"], site["people"]
    runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"])
    draft_id = new_draft(site)

    page = text_of(site["owner"].get("/processes"))
    assert "Version 1 Current" in page and "Command line" in page
    assert re.search(r"Version 1 Current [0-9a-f]{12} ", page)
    assert re.search(r"Open episodes.*Version 1 Current .* 1 ", page)
    assert f"Draft {draft_id}" in page

    # Administrators read the library but never see drafts.
    admin_page = site["admin"].get("/processes")
    assert admin_page.status_code == 200 and f"Draft {draft_id}" not in text_of(admin_page)
    assert "Edit version 1 as a new draft" not in text_of(admin_page)

    version = site["admin"].get("/processes/caf_episode/versions/1")
    assert version.status_code == 200
    shown = text_of(version)
    assert "Complete and submit the assessment" in shown and "assessment.schema.json" in shown
    assert "Edit as a new draft" not in shown
    assert 'data-xml-url="/processes/caf_episode/versions/1/files/caf_episode.bpmn"' in version.get_data(as_text=True)
    assert "Edit as a new draft" in text_of(site["owner"].get("/processes/caf_episode/versions/1"))
    form = site["admin"].get("/processes/caf_episode/versions/1/forms/consent.schema.json")
    assert form.status_code == 200 and "What practitioners see" in text_of(form)


def test_files_download_as_attachments_and_the_zip_deploys_with_the_same_hash(site, tmp_path):
    bpmn = site["admin"].get("/processes/caf_episode/versions/1/files/caf_episode.bpmn")
    assert bpmn.status_code == 200 and bpmn.mimetype == "application/xml"
    assert bpmn.headers["Content-Disposition"].startswith('attachment; filename="caf_episode.bpmn"')
    form = site["admin"].get("/processes/caf_episode/versions/1/files/forms/consent.schema.json")
    assert form.mimetype == "application/json" and form.headers["Content-Disposition"].startswith("attachment")
    assert site["admin"].get("/processes/caf_episode/versions/1/files/forms/nothing.json").status_code == 404

    archive = site["admin"].get("/processes/caf_episode/versions/1.zip")
    assert archive.headers["Content-Disposition"].startswith('attachment; filename="caf_episode-v1.zip"')
    with zipfile.ZipFile(io.BytesIO(archive.data)) as unzipped:
        assert "caf_episode.bpmn" in unzipped.namelist() and "forms/consent.schema.json" in unzipped.namelist()
        unzipped.extractall(tmp_path / "model")
    with site["runtime"].db.session() as session:
        version = session.scalar(select(ProcessVersion).where(ProcessVersion.version == 1))
    assert Bundle.from_directory(tmp_path / "model").content_hash == version.content_hash


# ---------------------------------------------------------------- drafts


def test_a_draft_starts_as_a_copy_of_the_version_and_saves_the_modelers_xml(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    draft = draft_of(runtime, draft_id)
    with runtime.db.session() as session:  # the version's files are read when asked for: inside the session
        version = session.scalar(select(ProcessVersion).where(ProcessVersion.version == 1))
        assert draft.bpmn_files == version.bpmn_files and draft.forms == version.forms and draft.revision == 1
    assert audit_of(runtime, "draft_created")[-1] == {"process_id": "caf_episode", "draft_id": draft_id,
                                                   "from_version": 1}
    page = site["owner"].get(f"/processes/drafts/{draft_id}").get_data(as_text=True)
    assert "bpmn-modeler.production.min.js" in page and 'data-file="caf_episode.bpmn"' in page

    xml = draft.bpmn_files["caf_episode.bpmn"].replace(TASK_NAME, NEW_NAME)
    answer = save(site, draft_id, xml, 1)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {"saved": True, "revision": 2, "problems": [], "withdrawn": False}
    assert NEW_NAME in draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"]
    assert audit_of(runtime, "draft_saved")[-1]["files"] == ["caf_episode.bpmn"]

    # A save from a copy opened before that one is refused: nothing is lost.
    stale = save(site, draft_id, xml.replace(NEW_NAME, 'name="Another name"'), 1)
    assert stale.status_code == 409 and "changed by Owen Owner" in stale.json["problems"][0]
    broken = save(site, draft_id, "<bpmn:definitions", 2)
    assert broken.status_code == 400 and "the XML does not parse" in broken.json["problems"][0]
    not_bpmn = save(site, draft_id, "<html><body/></html>", 2)
    assert not_bpmn.status_code == 400 and "not a BPMN 2.0 file" in not_bpmn.json["problems"][0]
    assert draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"] == xml


def test_validation_names_each_problem_and_a_draft_with_problems_is_not_submitted(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    xml = draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"]
    broken = (xml.replace("<bpmn:timeDate>caf_due_at</bpmn:timeDate>", "<bpmn:timeDuration>P35D</bpmn:timeDuration>")
              .replace('value="consent.schema.json"', 'value="missing.schema.json"')
              .replace("<bpmn:script>", "<bpmn:script>if ready ==:\n", 1)
              .replace('serviceTaskOperator id="', 'serviceTaskOperator id="unknown/', 1))
    answer = save(site, draft_id, broken, 1)
    assert answer.json["saved"] is True
    problems = answer.json["problems"]
    assert any("'caf_deadline' (35-day limit)" in p and "quoted" in p for p in problems), problems
    assert any("'obtain_consent' (Obtain consent)" in p and "missing.schema.json" in p for p in problems), problems
    assert any("'open_episode' (Open the episode)" in p and "syntax error" in p for p in problems), problems
    assert any("no handler is registered for operator 'unknown/" in p for p in problems), problems

    checked = site["owner"].post(f"/processes/drafts/{draft_id}/validate", token_from=f"/processes/drafts/{draft_id}")
    assert checked.status_code == 200 and f"{len(problems)} problems stop this draft being deployed" in text_of(checked)

    refused = site["owner"].post(f"/processes/drafts/{draft_id}/submit",
                                 {"change_note": "Quicker deadline", "revision": "2"},
                                 token_from=f"/processes/drafts/{draft_id}")
    assert refused.status_code == 400
    shown = text_of(refused)
    assert "This draft has problems, so it was not submitted" in shown and "missing.schema.json" in shown
    assert "Quicker deadline" in shown  # the note as typed stays
    draft = draft_of(runtime, draft_id)
    assert versions(runtime) == 1 and (draft.status, draft.review_status) == ("open", "editing")
    assert not audit_of(runtime, "draft_submitted") and not audit_of(runtime, "process_deployed")


def test_a_discarded_draft_is_gone_and_audited(site):
    draft_id = new_draft(site)
    answer = site["owner"].post(f"/processes/drafts/{draft_id}/discard", token_from=f"/processes/drafts/{draft_id}")
    assert answer.status_code == 303
    assert draft_of(site["runtime"], draft_id).status == "discarded"
    assert site["owner"].get(f"/processes/drafts/{draft_id}").status_code == 404
    assert f"Draft {draft_id}" not in text_of(site["owner"].get("/processes"))
    assert audit_of(site["runtime"], "draft_discarded")[-1] == {"process_id": "caf_episode", "draft_id": draft_id}


# ---------------------------------------------------------------- uploads


def test_uploads_replace_files_and_bad_files_change_nothing(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    original = draft_of(runtime, draft_id)
    xml = original.bpmn_files["caf_episode.bpmn"]

    refusals = {
        "caf_episode.bpmn": (b"<bpmn:definitions><unclosed>", "the XML does not parse"),
        "page.bpmn": (b"<?xml version='1.0'?><html/>", "not a BPMN 2.0 file"),
        "evil.bpmn": (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]>'
                      b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
                      "must not declare a DOCTYPE"),
        "latin.bpmn": ("<bpmn:definitions>café</bpmn:definitions>".encode("latin-1"), "not UTF-8 text"),
        "consent.schema.json": (b'{"type": "object",\n "properties": {,}}', "line 2, column 17"),
        "notes.txt": (b"hello", "is not a .bpmn, .json or .zip file"),
        "model.zip": (b"PK\x03\x04 not really", "not a zip file that can be read"),
        "../../etc.bpmn": (xml.encode(), None),  # the path is dropped: only the name counts
    }
    for name, (content, message) in refusals.items():
        answer = upload(site, draft_id, name, content)
        if message is None:
            assert answer.status_code == 303
            continue
        assert answer.status_code == 400, name
        assert message in text_of(answer), (name, text_of(answer)[:2000])
    draft = draft_of(runtime, draft_id)
    assert draft.forms == original.forms and draft.bpmn_files["caf_episode.bpmn"] == xml
    assert sorted(draft.bpmn_files) == sorted([*original.bpmn_files, "etc.bpmn"])

    # A form file replaces the one of the same name.
    replaced = upload(site, draft_id, "consent.uischema.json", b'{"ui:order": ["*"]}')
    assert replaced.status_code == 303
    assert draft_of(runtime, draft_id).forms["consent.uischema.json"] == '{"ui:order": ["*"]}'
    # An upload based on an older copy of the draft is refused.
    stale = upload(site, draft_id, "consent.uischema.json", b"{}", revision=1)
    assert stale.status_code == 409 and "since you opened it" in text_of(stale)

    # Too large: refused before it is read, saying what the limit is.
    huge = upload(site, draft_id, "huge.zip", b"0" * (11 * 1024 * 1024))
    assert huge.status_code == 413 and "larger than 10 MB" in text_of(huge)
    assert draft_of(runtime, draft_id).forms["consent.uischema.json"] == '{"ui:order": ["*"]}'


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_a_zip_replaces_the_whole_model_and_a_bad_zip_lists_every_problem(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    version_zip = site["owner"].get("/processes/caf_episode/versions/1.zip").data
    with zipfile.ZipFile(io.BytesIO(version_zip)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}

    bad = {**files, "forms/consent.schema.json": b"{not json", "notes/readme.docx": b"x",
           "caf_episode.bpmn": files["caf_episode.bpmn"].replace(b"</bpmn:definitions>", b"")}
    answer = upload(site, draft_id, "model.zip", _zip(bad))
    assert answer.status_code == 400
    shown = text_of(answer)
    for expected in ("forms/consent.schema.json is not valid JSON", "notes/readme.docx: not part of a process model",
                     "caf_episode.bpmn: the XML does not parse"):
        assert expected in shown, shown[:3000]

    bomb = _zip({"caf_episode.bpmn": b"<" + b" " * (21 * 1024 * 1024)})
    assert "unpacks to more than 20 MB" in text_of(upload(site, draft_id, "bomb.zip", bomb))
    assert draft_of(runtime, draft_id).revision == 1

    # spiff-arena's layout (forms beside the BPMN, in a folder of the model's name) is read too.
    spiff = {f"caf-model/{name.removeprefix('forms/')}": content for name, content in files.items()}
    spiff["caf-model/process_model.json"] = b'{"display_name": "CAF"}'
    smaller = {k: v for k, v in spiff.items() if not k.endswith("review.uischema.json")}
    assert upload(site, draft_id, "caf-model.zip", _zip(smaller)).status_code == 303
    draft = draft_of(runtime, draft_id)
    assert "review.uischema.json" not in draft.forms and "process_model.json" not in draft.forms
    assert draft.bpmn_files["caf_episode.bpmn"] == files["caf_episode.bpmn"].decode()
    assert audit_of(runtime, "draft_saved")[-1]["replaced_all"] is True


def test_a_draft_can_start_from_files_made_in_another_editor(site):
    runtime = site["runtime"]
    archive = site["owner"].get("/processes/caf_episode/versions/1.zip").data

    def start(process_id: str, name: str, content: bytes):
        return site["owner"].post("/processes/drafts", {"process_id": process_id, "file": (io.BytesIO(content), name)},
                                  token_from="/processes", content_type="multipart/form-data")

    no_id = start("not an id!", "model.zip", archive)
    assert no_id.status_code == 400 and "Enter the process id" in text_of(no_id)
    assert 'value="not an id!"' in no_id.get_data(as_text=True)
    no_bpmn = start("caf_episode", "forms.zip", _zip({"forms/consent.schema.json": b"{}"}))
    assert no_bpmn.status_code == 400 and "has no .bpmn file" in text_of(no_bpmn)

    started = start("caf_episode", "model.zip", archive)
    assert started.status_code == 303
    draft = draft_of(runtime, int(re.search(r"/drafts/(\d+)", started.location).group(1)))
    assert draft.base_version_id is None and "consent.schema.json" in draft.forms
    assert "from uploaded files" in text_of(site["owner"].get(started.location))
    assert audit_of(runtime, "draft_created")[-1]["uploaded"] == "model.zip"


def test_a_bpmn_file_from_another_tool_with_unsupported_elements_is_listed_as_a_problem(site):
    draft_id = new_draft(site)
    xml = draft_of(site["runtime"], draft_id).bpmn_files["caf_episode.bpmn"]
    foreign = xml.replace('<bpmn:userTask id="obtain_consent"',
                          '<bpmn:complexGateway id="choose_path" name="Choose a path"/>'
                          '<bpmn:userTask id="obtain_consent"', 1)
    assert upload(site, draft_id, "caf_episode.bpmn", foreign.encode()).status_code == 303
    checked = site["owner"].post(f"/processes/drafts/{draft_id}/validate", token_from=f"/processes/drafts/{draft_id}",
                                 headers={"Accept": "application/json"})
    assert any("'choose_path' (Choose a path)" in p and "complex gateway" in p for p in checked.json["problems"])


# ---------------------------------------------------------------- forms


def test_the_form_editor_previews_saves_and_keeps_invalid_json_as_typed(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    base = f"/processes/drafts/{draft_id}/forms/lead_professional.schema.json"
    page = site["owner"].get(base)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="form-json-schema"' in html and 'id="form-ui-schema"' in html
    assert "Appoint the lead professional" in text_of(page)  # the task that shows it
    # A UI schema's own address leads to its form.
    assert site["owner"].get(f"/processes/drafts/{draft_id}/forms/lead_professional.uischema.json").status_code == 302

    schema = {"title": "Lead professional", "type": "object", "required": ["lead_name"],
              "properties": {"lead_name": {"type": "string", "title": "Name of the lead professional"}}}
    typed = json.dumps(schema, indent=2).replace('"required"', '"required":: ')
    bad = site["owner"].post(base, {"schema": typed, "ui": "{}", "action": "save", "revision": "1"})
    assert bad.status_code == 400
    shown = text_of(bad)
    assert "The JSON Schema is not valid JSON: line 4, column" in shown
    assert "&#34;required&#34;:: " in bad.get_data(as_text=True) or '"required":: ' in shown  # kept as typed
    assert draft_of(runtime, draft_id).revision == 1

    preview = site["owner"].post(base, {"schema": json.dumps(schema), "ui": "", "action": "preview", "revision": "1"})
    assert preview.status_code == 200 and "Name of the lead professional" in text_of(preview)
    assert draft_of(runtime, draft_id).revision == 1  # a preview saves nothing

    fragment = site["owner"].post(f"{base}/preview", {"schema": json.dumps(schema), "ui": ""}, token_from=base)
    assert fragment.status_code == 200 and "<html" not in fragment.get_data(as_text=True)
    assert 'name="lead_name"' in fragment.get_data(as_text=True)
    not_yet = site["owner"].post(f"{base}/preview", {"schema": "{", "ui": ""}, token_from=base)
    assert "The preview shows once the JSON is valid" in text_of(not_yet)

    not_schema = site["owner"].post(base, {"schema": '{"type": 12}', "ui": "", "action": "save", "revision": "1"})
    assert not_schema.status_code == 400 and "The JSON Schema is not valid" in text_of(not_schema)

    saved = site["owner"].post(base, {"schema": json.dumps(schema), "ui": '{"ui:order": ["lead_name"]}',
                                      "action": "save", "revision": "1"})
    assert saved.status_code == 303
    draft = draft_of(runtime, draft_id)
    assert json.loads(draft.forms["lead_professional.schema.json"]) == schema
    assert draft.forms["lead_professional.uischema.json"] == '{"ui:order": ["lead_name"]}'
    assert audit_of(runtime, "draft_saved")[-1]["files"] == ["lead_professional.schema.json",
                                                          "lead_professional.uischema.json"]


def test_a_new_form_is_added_chosen_for_a_task_and_removed(site):
    runtime = site["runtime"]
    draft_id = new_draft(site)
    draft_page = f"/processes/drafts/{draft_id}"
    added = site["owner"].post(f"{draft_page}/forms", {"name": "referral.schema.json", "revision": "1"},
                               token_from=draft_page)
    assert added.status_code == 303 and added.location.endswith("/forms/referral.schema.json")
    again = site["owner"].post(f"{draft_page}/forms", {"name": "referral.schema.json", "revision": "2"},
                               token_from=draft_page)
    assert again.status_code == 400 and "already has a form file called referral.schema.json" in text_of(again)

    task_page = f"{draft_page}/tasks/obtain_consent/form"
    assert "Choose the form of “Obtain consent”" in text_of(site["owner"].get(task_page))
    wrong = site["owner"].post(task_page, {"schema_file": "", "ui_file": "bad name", "revision": "2"})
    assert wrong.status_code == 400 and "Enter the name of the form" in text_of(wrong)
    chosen = site["owner"].post(task_page, {"schema_file": "referral.schema.json", "ui_file": "", "revision": "2"})
    assert chosen.status_code == 303
    xml = draft_of(runtime, draft_id).bpmn_files["caf_episode.bpmn"]
    consent_task = xml[xml.index('<bpmn:userTask id="obtain_consent"'):]
    consent_task = consent_task[:consent_task.index("</bpmn:userTask>")]
    assert 'name="formJsonSchemaFilename" value="referral.schema.json"' in consent_task
    assert "formUiSchemaFilename" not in consent_task

    removed = site["owner"].post(f"{draft_page}/files/forms/consent.uischema.json/remove", {"revision": "3"},
                                 token_from=draft_page)
    assert removed.status_code == 303 and "consent.uischema.json" not in draft_of(runtime, draft_id).forms
    assert site["owner"].post(f"{draft_page}/files/forms/nothing.json/remove", {"revision": "4"},
                              token_from=draft_page).status_code == 404


# ---------------------------------------------------------------- roles


def test_only_process_owners_change_anything(site):
    draft_id = new_draft(site)
    admin, practitioner = site["admin"], site["practitioner"]
    token = csrf_token(admin.get("/account").get_data(as_text=True))
    for path in ("/processes/caf_episode/versions/1/draft", f"/processes/drafts/{draft_id}/deploy",
                 f"/processes/drafts/{draft_id}/discard", f"/processes/drafts/{draft_id}/bpmn",
                 f"/processes/drafts/{draft_id}/submit", f"/processes/drafts/{draft_id}/approve",
                 f"/processes/drafts/{draft_id}/reject"):
        assert admin.client.post(path, data={"csrf_token": token, "change_note": "x"}).status_code == 403, path
    for path in (f"/processes/drafts/{draft_id}", f"/processes/drafts/{draft_id}.zip",
                 f"/processes/drafts/{draft_id}/forms/consent.schema.json", f"/processes/drafts/{draft_id}/review"):
        assert admin.get(path).status_code == 403, path
    for path in ("/processes", "/processes/caf_episode/versions/1", "/processes/caf_episode/versions/1.zip"):
        assert practitioner.get(path).status_code == 403, path
    assert versions(site["runtime"]) == 1 and draft_of(site["runtime"], draft_id).status == "open"
    # The navigation offers the library to those who may read it.
    assert ">Processes<" in site["owner"].get("/").get_data(as_text=True).replace("\n", "").replace(" ", "")
    assert "Processes" not in text_of(practitioner.get("/"))
