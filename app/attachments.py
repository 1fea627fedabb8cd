"""Evidence attached to an episode: files kept in a directory outside the database rows.

A file is accepted only when its content is one of a few known types and its name agrees with
its content; anything else is refused before a byte is written. Each file is stored under a
random key (never the uploaded name), written to a temporary file and renamed into place.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session, joinedload

from app import audit, policy
from app.clock import now
from app.config import Config
from app.files import write_whole
from app.models import Attachment, Episode, User

MAX_NAME = 255  # the filename column's width


class AttachmentRefused(Exception):
    """An upload that cannot be kept; `message` tells the user why, in words they can act on."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class AttachmentMissing(LookupError):
    """The row exists but its file is not in the store (restored from an old backup, or removed by hand)."""


@dataclass(frozen=True)
class Kind:
    """A type of file eCAF accepts: what to call it, how to serve it, the names it may have."""

    label: str
    content_type: str
    extensions: tuple[str, ...]
    short: str


PDF = Kind("a PDF document", "application/pdf", (".pdf",), "PDF")
PNG = Kind("a PNG image", "image/png", (".png",), "PNG image")
JPEG = Kind("a JPEG image", "image/jpeg", (".jpg", ".jpeg"), "JPEG image")
TEXT = Kind("a plain text file", "text/plain", (".txt", ".csv"), "Text")
DOCX = Kind("a Word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            (".docx",), "Word document")
XLSX = Kind("an Excel spreadsheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            (".xlsx",), "Excel spreadsheet")
KINDS = (PDF, PNG, JPEG, TEXT, DOCX, XLSX)
ACCEPTED = "a PDF, PNG, JPEG, Word (.docx), Excel (.xlsx) or plain text file"

# Content we recognise but never keep, so the refusal can say what the file really is.
REFUSED_SIGNATURES = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xcf\xfa\xed\xfe", "a Mac program"),
    (b"\xce\xfa\xed\xfe", "a Mac program"),
    (b"\xca\xfe\xba\xbe", "a Mac or Java program"),
    (b"#!", "a script"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an older Word or Excel file (.doc or .xls)"),
    (b"GIF8", "a GIF image"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "a Rich Text Format document"),
)
WEB_PAGE_STARTS = ("<!doctype html", "<html", "<svg", "<script")


# ---------------------------------------------------------------- what a file is

def detect(content: bytes) -> Kind | str:
    """The accepted kind the content is, or a description of what it is instead."""
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith(b"PK\x03\x04"):
        return _office_document(content)
    for signature, description in REFUSED_SIGNATURES:
        if content.startswith(signature):
            return description
    if content.startswith(b"RIFF") and content[8:12] == b"WEBP":
        return "a WebP image"
    return _plain_text(content)


def _office_document(content: bytes) -> Kind | str:
    """A .docx or .xlsx is a ZIP with a content-types part and its own folder; only names are read."""
    try:
        names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return "a damaged ZIP file"
    if "[Content_Types].xml" not in names:
        return "a ZIP archive"
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        return "an Office document with macros"
    if any(name.startswith("word/") for name in names):
        return DOCX
    if any(name.startswith("xl/") for name in names):
        return XLSX
    return "an Office document of a kind eCAF does not accept"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _plain_text(content: bytes) -> Kind | str:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "a file of a type eCAF does not recognise"
    if _CONTROL.search(text):
        return "a file of a type eCAF does not recognise"
    if text.lstrip().lower().startswith(WEB_PAGE_STARTS):
        return "a web page or SVG image"
    return TEXT


def kind_of(content_type: str) -> Kind | None:
    return next((kind for kind in KINDS if kind.content_type == content_type), None)


# ---------------------------------------------------------------- names

def clean_filename(filename: str | None) -> str:
    """The uploaded name without any folder a browser sent, control characters or excess length."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".")
    if len(name) > MAX_NAME:
        stem, extension = os.path.splitext(name)
        name = stem[:MAX_NAME - len(extension)] + extension
    return name


def extension_of(filename: str) -> str:
    return os.path.splitext(filename)[1].lower()


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII name for old clients and the exact name as RFC 5987 `filename*`."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip(" .") or "attachment"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def size_label(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def limit_label(config: Config) -> str:
    return size_label(config.attachment_max_bytes).replace(".0 MB", " MB")


# ---------------------------------------------------------------- checks

def _read_within_limit(stream: BinaryIO, config: Config, filename: str) -> bytes:
    """At most one byte more than the limit is read: enough to know the file is too large."""
    content = stream.read(config.attachment_max_bytes + 1)
    if len(content) > config.attachment_max_bytes:
        raise AttachmentRefused(f"{filename} is larger than {limit_label(config)}: "
                                f"choose a smaller file, or split it into parts")
    if not content:
        raise AttachmentRefused(f"{filename} is empty: choose the file again")
    return content


def _accepted_kind(content: bytes, filename: str) -> Kind:
    """The kind the content is, provided it is accepted and the name's extension agrees."""
    found = detect(content)
    extension = extension_of(filename)
    if isinstance(found, str):
        claimed = next((k for k in KINDS if extension in k.extensions), None)
        really = f"is really {found}, not {claimed.label}" if claimed else f"is {found}"
        raise AttachmentRefused(f"{filename} {really}. You can only attach {ACCEPTED}")
    if extension not in found.extensions:
        named = f"its name ends {extension}" if extension else "its name has no extension"
        raise AttachmentRefused(f"{filename} is {found.label}, but {named}. Rename it to end "
                                f"{found.extensions[0]} if that is right, then attach it again")
    return found


# ---------------------------------------------------------------- the store

def path_for(config: Config, storage_key: str) -> Path:
    """Keys spread over subfolders by their first two characters, so no folder grows too large."""
    if not re.fullmatch(r"[0-9a-f]{32}", storage_key):
        raise ValueError("not a storage key")
    return Path(config.attachments_dir) / storage_key[:2] / storage_key


def _write(config: Config, content: bytes) -> str:
    """Write to a temporary file beside the target, then rename: a reader never sees half a file."""
    storage_key = secrets.token_hex(16)
    write_whole(path_for(config, storage_key), content, prefix=".upload-")
    return storage_key


def store(session: Session, config: Config, *, episode: Episode, user: User, filename: str | None,
          stream: BinaryIO, attached_to: str | None = None) -> Attachment:
    """Check, write and record one upload; raises AttachmentRefused, having written nothing, if it cannot be kept."""
    name = clean_filename(filename)
    if not name:
        raise AttachmentRefused("Select a file to attach")
    content = _read_within_limit(stream, config, name)
    kind = _accepted_kind(content, name)
    storage_key = _write(config, content)
    _remove_if_rolled_back(session, path_for(config, storage_key))
    attachment = Attachment(episode_id=episode.id, attached_to=attached_to, filename=name,
                            content_type=kind.content_type, size=len(content),
                            sha256=hashlib.sha256(content).hexdigest(), storage_key=storage_key,
                            uploaded_by_id=user.id, uploaded_at=now())
    session.add(attachment)
    session.flush()
    audit.record(session, "attachment_uploaded", actor_id=user.id, episode_id=episode.id,
                 attachment_id=attachment.id, filename=name, content_type=kind.content_type,
                 size=attachment.size, sha256=attachment.sha256, attached_to=attached_to)
    return attachment


def for_episode(session: Session, episode: Episode) -> list[Attachment]:
    return session.scalars(select(Attachment).options(joinedload(Attachment.uploaded_by))
                           .where(Attachment.episode_id == episode.id)
                           .order_by(Attachment.uploaded_at.desc(), Attachment.id.desc())).all()


@dataclass
class Download:
    attachment: Attachment
    file: BinaryIO

    @property
    def content_type(self) -> str:
        kind = kind_of(self.attachment.content_type)
        if kind is None:
            return "application/octet-stream"
        return kind.content_type + ("; charset=utf-8" if kind is TEXT else "")


def open_for_download(session: Session, config: Config, *, episode: Episode, attachment_id: int,
                      user: User) -> Download | None:
    """The attachment of this episode, opened for reading and recorded as downloaded; None if the
    episode has no such attachment. The caller has already decided the user may see the episode."""
    attachment = session.get(Attachment, attachment_id)
    if not policy.is_attachment_of(attachment, episode):
        return None
    try:
        file = path_for(config, attachment.storage_key).open("rb")
    except FileNotFoundError as missing:
        raise AttachmentMissing(f"attachment {attachment.id} has no file in the store") from missing
    audit.record(session, "attachment_downloaded", actor_id=user.id, episode_id=episode.id,
                 attachment_id=attachment.id, filename=attachment.filename)
    return Download(attachment, file)


def delete_for_episode(session: Session, config: Config, episode_id: int, *,
                       actor_id: int | None = None) -> int:
    """Remove an episode's attachments when it is purged. The rows go in the caller's transaction;
    the files go only once it commits, so a purge that fails loses nothing."""
    keys = session.scalars(select(Attachment.storage_key).where(Attachment.episode_id == episode_id)).all()
    if not keys:
        return 0
    session.execute(delete(Attachment).where(Attachment.episode_id == episode_id))
    _remove_once_committed(session, [path_for(config, key) for key in keys])
    audit.record(session, "attachments_deleted", actor_id=actor_id, episode_id=episode_id, count=len(keys))
    return len(keys)


# ---------------------------------------------------------------- files follow the transaction

_WRITTEN, _DOOMED = "attachments_written", "attachments_doomed"


def _remove_if_rolled_back(session: Session, path: Path) -> None:
    session.info.setdefault(_WRITTEN, []).append(path)


def _remove_once_committed(session: Session, paths: list[Path]) -> None:
    session.info.setdefault(_DOOMED, []).extend(paths)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@event.listens_for(Session, "after_commit")
def _files_after_commit(session: Session) -> None:
    session.info.pop(_WRITTEN, None)  # kept: their rows are saved
    _unlink_all(session.info.pop(_DOOMED, []))


@event.listens_for(Session, "after_rollback")
def _files_after_rollback(session: Session) -> None:
    _unlink_all(session.info.pop(_WRITTEN, []))  # their rows were never saved
    session.info.pop(_DOOMED, None)  # their rows are still there
