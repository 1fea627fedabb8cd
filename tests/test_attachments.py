"""Attachments for evidence: accepted by content, stored outside the rows, downloaded only as files, audited."""
from __future__ import annotations

import dataclasses
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import attachments
from app.attachments import AttachmentRefused
from app.config import PROJECT_ROOT, Config
from app.models import Attachment, AuditEvent, Episode, User
from app.web import attachments as attachments_web

from . import access_world
from .web import browser, make_app, text_of


# ---------------------------------------------------------------- sample files

def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
            + chunk(b"IEND", b""))


def _office(folder: str, part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr(f"{folder}/{part}", '<?xml version="1.0"?><document/>')
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = _png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
TEXT = "Notes from the café meeting – Casey is settled.\n".encode()
DOCX = _office("word", "document.xml")
XLSX = _office("xl", "workbook.xml")
EXE = b"MZ\x90\x00\x03" + bytes(59) + b"This program cannot be run in DOS mode.\r\n"

ACCEPTED = [("referral.pdf", PDF, "application/pdf"), ("bruise.png", PNG, "image/png"),
            ("letter.JPG", JPEG, "image/jpeg"), ("notes.txt", TEXT, "text/plain; charset=utf-8"),
            ("report.docx", DOCX, attachments.DOCX.content_type),
            ("attendance.xlsx", XLSX, attachments.XLSX.content_type)]


# ---------------------------------------------------------------- helpers

@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "evidence"


@pytest.fixture
def episode(runtime, people) -> int:
    return runtime.engine.start_episode(child_id=people["child"], originator_id=people["originator"]).episode_id


def _app(runtime, directory: Path, **settings):
    """The web app with attachments stored in `directory` (never the project's own folder)."""
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=directory, **settings)
    return make_app(runtime)


def _signed_in(app, username: str, secret: str):
    client = browser(app)
    client.sign_in(username, secret)
    return client


def _upload(client, episode_id: int, name: str, content: bytes):
    path = f"/episodes/{episode_id}/attachments"
    return client.post(path, {"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def _count(runtime, model, **where) -> int:
    with runtime.db.session() as session:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return session.scalar(query)


def _nothing_kept(runtime, directory: Path) -> None:
    assert _files(directory) == []
    assert _count(runtime, Attachment) == 0
    assert _count(runtime, AuditEvent, action="attachment_uploaded") == 0


def _refused(runtime, store_dir, answer, *phrases: str) -> None:
    assert answer.status_code == 400
    page = text_of(answer)
    assert "There is a problem" in page and 'href="#file"' in answer.get_data(as_text=True)
    for phrase in phrases:
        assert phrase in page
    _nothing_kept(runtime, store_dir)


# ---------------------------------------------------------------- accepted files

def test_each_accepted_type_is_stored_outside_the_rows_and_downloaded_intact(web, episode, store_dir):
    runtime = web["runtime"]
    client = _signed_in(_app(runtime, store_dir), "olive", web["secrets"]["originator"])
    for name, content, served_as in ACCEPTED:
        answer = _upload(client, episode, name, content)
        assert answer.status_code == 303, text_of(answer)
        with runtime.db.session() as session:
            row = session.scalars(select(Attachment).order_by(Attachment.id.desc())).first()
        assert (row.filename, row.size) == (name, len(content))
        assert row.content_type == served_as.split(";")[0]
        stored = store_dir / row.storage_key[:2] / row.storage_key
        assert stored.read_bytes() == content  # under the configured folder, by key, not by name
        assert name not in str(stored)

        download = client.get(f"/episodes/{episode}/attachments/{row.id}")
        assert download.status_code == 200
        assert download.data == content
        assert download.headers["Content-Type"] == served_as
        assert download.headers["Content-Disposition"].startswith("attachment; filename=")
        assert f"filename*=UTF-8''{name}" in download.headers["Content-Disposition"]
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
        assert download.headers["Cache-Control"] == "no-store"
        with runtime.db.session() as session:
            audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "attachment_downloaded")
                                    .order_by(AuditEvent.id.desc())).first()
        assert (audit.actor_id, audit.episode_id, audit.detail["attachment_id"]) == \
            (web["people"]["originator"], episode, row.id)

    assert _count(runtime, AuditEvent, action="attachment_uploaded", episode_id=episode) == len(ACCEPTED)
    assert _count(runtime, AuditEvent, action="attachment_downloaded", episode_id=episode) == len(ACCEPTED)
    listing = text_of(client.get(f"/episodes/{episode}/attachments"))
    for name, _, _ in ACCEPTED:
        assert name in listing
    assert "Olive Origin" in listing and "Word document" in listing


def test_a_name_with_any_characters_downloads_under_a_safe_name(web, episode, store_dir):
    client = _signed_in(_app(web["runtime"], store_dir), "olive", web["secrets"]["originator"])
    assert _upload(client, episode, "Résumé; final,½ x.pdf", PDF).status_code == 303
    with web["runtime"].db.session() as session:
        row = session.scalar(select(Attachment))
    assert row.filename == "Résumé; final,½ x.pdf"
    disposition = client.get(f"/episodes/{episode}/attachments/{row.id}").headers["Content-Disposition"]
    assert disposition == ("attachment; filename=\"Resume_ final_12 x.pdf\"; "
                           "filename*=UTF-8''R%C3%A9sum%C3%A9%3B%20final%2C%C2%BD%20x.pdf")


def test_an_uploaded_name_loses_folders_control_characters_and_excess_length():
    assert attachments.clean_filename('C:\\fakepath\\Report "final"\r\n.pdf') == 'Report "final".pdf'
    assert attachments.clean_filename("../../etc/passwd") == "passwd"
    assert attachments.clean_filename("evil\u202efdp.exe") == "evilfdp.exe"  # no right-to-left override
    assert attachments.clean_filename("x" * 300 + ".pdf") == "x" * 251 + ".pdf"
    assert attachments.content_disposition('a"b.pdf') == "attachment; filename=\"a_b.pdf\"; filename*=UTF-8''a%22b.pdf"


# ---------------------------------------------------------------- refused files

def test_a_file_over_the_limit_is_refused_with_the_limit_named(web, episode, store_dir):
    runtime = web["runtime"]
    client = _signed_in(_app(runtime, store_dir, attachment_max_bytes=1024), "olive", web["secrets"]["originator"])
    answer = _upload(client, episode, "notes.txt", b"a" * 1025)
    _refused(runtime, store_dir, answer, "notes.txt is larger than 1 KB")
    assert _upload(client, episode, "notes.txt", b"a" * 1024).status_code == 303  # the limit itself is allowed


def test_a_request_far_over_the_limit_is_refused_before_it_is_read(web, episode, store_dir):
    runtime = web["runtime"]
    client = _signed_in(_app(runtime, store_dir, attachment_max_bytes=1024), "olive", web["secrets"]["originator"])
    answer = _upload(client, episode, "big.pdf", PDF + bytes(attachments_web.FORM_ALLOWANCE + 2048))
    assert answer.status_code == 413
    assert "The selected file must be 1 KB or smaller" in text_of(answer)
    _nothing_kept(runtime, store_dir)


@pytest.mark.parametrize("name, content, says", [
    ("report.pdf", EXE, "report.pdf is really a Windows program, not a PDF document"),
    ("photo.pdf", PNG, "photo.pdf is a PNG image, but its name ends .pdf. Rename it to end .png"),
    ("letter.docx", PDF, "letter.docx is a PDF document, but its name ends .docx"),
    ("page.txt", b"<!DOCTYPE html><script>alert(1)</script>", "page.txt is really a web page or SVG image"),
])
def test_a_disguised_file_is_refused_saying_what_it_really_is(web, episode, store_dir, name, content, says):
    client = _signed_in(_app(web["runtime"], store_dir), "olive", web["secrets"]["originator"])
    _refused(web["runtime"], store_dir, _upload(client, episode, name, content), says, "You can only attach"
             if "really" in says else "attach it again")


@pytest.mark.parametrize("name, content, says", [
    ("data.bin", bytes(range(256)), "data.bin is a file of a type eCAF does not recognise"),
    ("cat.gif", b"GIF89a\x01\x00\x01\x00", "cat.gif is a GIF image"),
    ("bundle.docx", b"PK\x03\x04" + bytes(40), "bundle.docx is really a damaged ZIP file, not a Word document"),
    ("empty.txt", b"", "empty.txt is empty"),
])
def test_a_file_of_another_type_is_refused(web, episode, store_dir, name, content, says):
    client = _signed_in(_app(web["runtime"], store_dir), "olive", web["secrets"]["originator"])
    _refused(web["runtime"], store_dir, _upload(client, episode, name, content), says)


def test_a_form_without_a_file_asks_for_one(web, episode, store_dir):
    client = _signed_in(_app(web["runtime"], store_dir), "olive", web["secrets"]["originator"])
    answer = client.post(f"/episodes/{episode}/attachments", {})
    _refused(web["runtime"], store_dir, answer, "Select a file to attach")


def test_types_are_told_apart_by_content_alone():
    assert attachments.detect(_office("word", "document.xml")) is attachments.DOCX
    assert attachments.detect(_office("xl", "workbook.xml")) is attachments.XLSX
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("readme.txt", "hello")
    assert attachments.detect(archive.getvalue()) == "a ZIP archive"
    with zipfile.ZipFile(macro := io.BytesIO(), "w") as zipped:
        zipped.writestr("[Content_Types].xml", "<Types/>")
        zipped.writestr("word/vbaProject.bin", b"\x00")
    assert attachments.detect(macro.getvalue()) == "an Office document with macros"
    assert attachments.detect(b"\x7fELF\x02\x01") == "a Linux program"
    assert attachments.detect("\ufeffplain text with a BOM".encode()) is attachments.TEXT
    assert attachments.detect(b"text with a \x00 NUL") == "a file of a type eCAF does not recognise"


# ---------------------------------------------------------------- the store and its transaction

def _episode_and_user(session, episode_id: int, user_id: int):
    return session.get(Episode, episode_id), session.get(User, user_id)


def test_a_file_is_removed_again_when_its_row_is_not_saved(runtime, people, episode, store_dir):
    config = dataclasses.replace(runtime.config, attachments_dir=store_dir)
    with pytest.raises(RuntimeError):
        with runtime.db.session() as session:
            found, user = _episode_and_user(session, episode, people["originator"])
            attachments.store(session, config, episode=found, user=user, filename="a.pdf", stream=io.BytesIO(PDF))
            assert len(_files(store_dir)) == 1
            raise RuntimeError("the rest of the change failed")
    _nothing_kept(runtime, store_dir)


def test_a_refusal_raises_before_anything_is_written(runtime, people, episode, store_dir):
    config = dataclasses.replace(runtime.config, attachments_dir=store_dir)
    with runtime.db.session() as session:
        found, user = _episode_and_user(session, episode, people["originator"])
        with pytest.raises(AttachmentRefused, match="is really a Windows program"):
            attachments.store(session, config, episode=found, user=user, filename="x.pdf", stream=io.BytesIO(EXE))
    _nothing_kept(runtime, store_dir)
    assert not store_dir.exists()


def test_purging_an_episode_removes_its_files_only_once_the_purge_commits(runtime, people, episode, store_dir):
    config = dataclasses.replace(runtime.config, attachments_dir=store_dir)
    with runtime.db.session() as session:
        found, user = _episode_and_user(session, episode, people["originator"])
        for name, content, _ in ACCEPTED[:2]:
            attachments.store(session, config, episode=found, user=user, filename=name, stream=io.BytesIO(content))
    assert len(_files(store_dir)) == 2

    with pytest.raises(RuntimeError):
        with runtime.db.session() as session:
            assert attachments.delete_for_episode(session, config, episode) == 2
            raise RuntimeError("the purge failed")
    assert len(_files(store_dir)) == 2 and _count(runtime, Attachment) == 2  # nothing lost

    with runtime.db.session() as session:
        assert attachments.delete_for_episode(session, config, episode, actor_id=people["admin"]) == 2
    assert _files(store_dir) == [] and _count(runtime, Attachment) == 0
    assert _count(runtime, AuditEvent, action="attachments_deleted", episode_id=episode) == 1


# ---------------------------------------------------------------- who may

def test_only_those_who_may_see_the_episode_reach_its_attachments(runtime, people, store_dir):
    world = access_world.build(runtime, people)
    app = _app(runtime, store_dir)
    given = world["episodes"]["given"]
    lead = _signed_in(app, "leah", world["secrets"]["lead"])
    assert _upload(lead, given, "referral.pdf", PDF).status_code == 303
    with runtime.db.session() as session:
        attachment_id = session.scalar(select(Attachment.id))

    for actor in ("member", "contributor", "admin"):
        client = _signed_in(app, access_world.USERNAMES[actor], world["secrets"][actor])
        assert client.get(f"/episodes/{given}/attachments").status_code == 200, actor
        assert client.get(f"/episodes/{given}/attachments/{attachment_id}").data == PDF, actor

    for actor in ("non_member", "excluded", "other_admin", "service_team"):
        denials = _count(runtime, AuditEvent, action="access_denied")
        client = _signed_in(app, access_world.USERNAMES[actor], world["secrets"][actor])
        assert client.get(f"/episodes/{given}/attachments").status_code == 404, actor
        assert client.get(f"/episodes/{given}/attachments/{attachment_id}").status_code == 404, actor
        posted = client.post(f"/episodes/{given}/attachments", {"file": (io.BytesIO(PDF), "mine.pdf")},
                             token_from="/account", content_type="multipart/form-data")
        assert posted.status_code == 404, actor
        assert _count(runtime, AuditEvent, action="access_denied") == denials + 3, actor
    assert _count(runtime, Attachment) == 1 and len(_files(store_dir)) == 1
    assert _count(runtime, AuditEvent, action="attachment_downloaded") == 3


def test_an_attachment_is_found_only_under_its_own_episode(runtime, people, store_dir):
    world = access_world.build(runtime, people)
    app = _app(runtime, store_dir)
    given, withdrawn = world["episodes"]["given"], world["episodes"]["withdrawn"]
    lead = _signed_in(app, "leah", world["secrets"]["lead"])
    assert _upload(lead, given, "referral.pdf", PDF).status_code == 303
    with runtime.db.session() as session:
        attachment_id = session.scalar(select(Attachment.id))
    assert lead.get(f"/episodes/{withdrawn}/attachments").status_code == 200  # the lead may see both
    assert lead.get(f"/episodes/{withdrawn}/attachments/{attachment_id}").status_code == 404
    assert lead.get(f"/episodes/{given}/attachments/{attachment_id + 1}").status_code == 404
    assert _count(runtime, AuditEvent, action="attachment_downloaded") == 0


# ---------------------------------------------------------------- settings

def test_the_folder_and_the_limit_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("ECAF_ATTACHMENTS_DIR", raising=False)
    monkeypatch.delenv("ECAF_ATTACHMENT_MAX_MB", raising=False)
    default = Config.from_env()
    assert default.attachments_dir == PROJECT_ROOT / "instance" / "attachments"
    assert default.attachment_max_bytes == 10 * 1024 * 1024
    monkeypatch.setenv("ECAF_ATTACHMENTS_DIR", str(tmp_path))
    monkeypatch.setenv("ECAF_ATTACHMENT_MAX_MB", "3")
    configured = Config.from_env()
    assert (configured.attachments_dir, configured.attachment_max_bytes) == (tmp_path, 3 * 1024 * 1024)


def test_the_upload_page_says_what_may_be_attached(web, episode, store_dir):
    client = _signed_in(_app(web["runtime"], store_dir), "olive", web["secrets"]["originator"])
    page = client.get(f"/episodes/{episode}/attachments")
    assert page.status_code == 200
    assert "You can attach a PDF, PNG, JPEG, Word (.docx), Excel (.xlsx) or plain text file, up to 10 MB" \
        in text_of(page)
    assert re.search(r'<input class="govuk-file-upload" id="file" name="file" type="file"', page.get_data(as_text=True))
    assert "Nothing has been attached to this CAF yet" in text_of(page)


def test_deleting_an_episode_removes_its_files_for_good(web, episode, store_dir):
    from app.engine import repair

    runtime = web["runtime"]
    app = _app(runtime, store_dir)
    client = _signed_in(app, "olive", web["secrets"]["originator"])
    assert _upload(client, episode, "letter.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n%%EOF\n").status_code == 303
    assert len(_files(store_dir)) == 1
    runtime.engine.config = runtime.config
    repair.delete_now(runtime.engine, episode, web["people"]["admin"], "Created without consent")
    assert _files(store_dir) == [] and _count(runtime, Attachment) == 0
