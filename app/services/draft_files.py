"""Files entering and leaving a draft: each file is checked as it comes in (size, UTF-8, well-formed
XML with a BPMN root, valid JSON) and a refusal changes nothing; a zip is read within limits, so a
zip bomb is refused unread. Line endings are normalised to "\\n": a version downloaded as a zip and
read back with `Bundle.from_directory` then has exactly the same content hash.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from app.engine import library

from .model_files import BPMN_NS, parse_xml

MAX_FILE_BYTES = library.MAX_FILE_BYTES  # one BPMN or form file
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # one upload: a zip of a whole process model
MAX_UNZIPPED_BYTES = 20 * 1024 * 1024  # what a zip may expand to, so a zip bomb is refused unread
MAX_ZIP_ENTRIES = 200

BPMN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\.bpmn")
FORM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\.json")
# Files that editors and operating systems put beside a model; a zip may carry them unremarked.
_IGNORED = re.compile(r"(^|/)(__MACOSX/|\.[^/]*$|process_model\.json$|README(\.md)?$)")


class DraftRefused(Exception):
    """Nothing was changed; `problems` says why, each in words the process owner can act on.
    `audited` when the refusal itself was recorded, so its audit row is committed, not rolled back."""

    def __init__(self, problems: list[str] | str, *, field_name: str | None = None, status: int = 400,
                 audited: bool = False):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.field_name = field_name
        self.status = status
        self.audited = audited
        super().__init__("; ".join(self.problems))


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(name: str, data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise DraftRefused(f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        return normalise(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DraftRefused(f"{name} is not UTF-8 text: save it as UTF-8 and upload it again") from None


def bpmn_problem(name: str, text: str) -> str | None:
    """Why the text cannot be a BPMN file, or None. The model's content is checked by validation."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
    try:
        root = parse_xml(text)
    except etree.XMLSyntaxError as exc:
        return f"{name}: the XML does not parse: {exc}"
    except ValueError as exc:
        return f"{name}: the XML cannot be read: {exc}"
    if root.getroottree().docinfo.doctype:
        return f"{name}: a BPMN file must not declare a DOCTYPE"
    if root.tag != f"{{{BPMN_NS}}}definitions":
        return f"{name} is not a BPMN 2.0 file: its first element is <{etree.QName(root).localname}>, " \
               f"not <bpmn:definitions>"
    return None


def json_problem(label: str, text: str) -> str | None:
    """Why the text is not JSON, saying where: "line 3, column 5: Expecting ',' delimiter"."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{label} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except RecursionError:
        return f"{label} is nested too deeply"
    return None


def checked_name(name: str, pattern: re.Pattern, kind: str) -> str:
    if not pattern.fullmatch(name):
        raise DraftRefused(f"“{name}” cannot be the name of a {kind} file: use letters, digits, dots, hyphens and "
                           f"underscores, ending in {'.bpmn' if kind == 'BPMN' else '.json'}")
    return name


def _read_limited(stream: BinaryIO, limit: int, name: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise DraftRefused(f"{name} is larger than {limit // (1024 * 1024)} MB")
    return data


@dataclass
class Files:
    """Files read from an upload, each checked; `whole` when they replace the draft's content."""

    bpmn_files: dict[str, str]
    forms: dict[str, str]
    whole: bool = False


def read_upload(filename: str, stream: BinaryIO) -> Files:
    """A .bpmn file, a form .json file, or a .zip of a processes directory (*.bpmn at the top and
    forms/*.json, or spiff-arena's layout with the forms beside the BPMN). Raises DraftRefused."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    if lower.endswith(".zip"):
        return _read_zip(base, _read_limited(stream, MAX_UPLOAD_BYTES, base))
    if lower.endswith(".bpmn") or lower.endswith(".bpmn20.xml"):
        name = checked_name(re.sub(r"\.bpmn20\.xml$", ".bpmn", base, flags=re.I), BPMN_NAME, "BPMN")
        text = _decode(base, _read_limited(stream, MAX_FILE_BYTES, base))
        if problem := bpmn_problem(base, text):
            raise DraftRefused(problem)
        return Files({name: text}, {})
    if lower.endswith(".json"):
        name = checked_name(base, FORM_NAME, "form")
        text = _decode(base, _read_limited(stream, MAX_FILE_BYTES, base))
        if problem := json_problem(base, text):
            raise DraftRefused(problem)
        return Files({}, {name: text})
    raise DraftRefused(f"{base or 'The file'} is not a .bpmn, .json or .zip file")


def _zip_prefix(names: list[str]) -> str:
    """A zip of the folder itself (processes/caf_episode.bpmn ...) is read as if unpacked inside it."""
    if any("/" not in n for n in names):
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    return f"{tops.pop()}/" if len(tops) == 1 and not tops & {"forms"} else ""


def _read_zip(zip_name: str, data: bytes) -> Files:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if not i.is_dir() and not _IGNORED.search(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise DraftRefused(f"{zip_name} is not a zip file that can be read") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise DraftRefused(f"{zip_name} holds {len(entries)} files: a process model has at most {MAX_ZIP_ENTRIES}")
    if sum(i.file_size for i in entries) > MAX_UNZIPPED_BYTES:
        raise DraftRefused(f"{zip_name} unpacks to more than {MAX_UNZIPPED_BYTES // (1024 * 1024)} MB")
    prefix = _zip_prefix([i.filename for i in entries])
    files, problems = Files({}, {}, whole=True), []
    for info in entries:
        path = info.filename.removeprefix(prefix)
        parts = path.split("/")
        if len(parts) == 1 and path.endswith(".bpmn"):
            target, pattern, kind = files.bpmn_files, BPMN_NAME, "BPMN"
        elif path.endswith(".json") and (len(parts) == 1 or (len(parts) == 2 and parts[0] == "forms")):
            target, pattern, kind = files.forms, FORM_NAME, "form"
        else:
            problems.append(f"{path}: not part of a process model (eCAF reads *.bpmn and forms/*.json)")
            continue
        name = parts[-1]
        try:
            checked_name(name, pattern, kind)
            if name in target:
                raise DraftRefused(f"{path}: there are two files called {name}")
            if info.file_size > MAX_FILE_BYTES:
                raise DraftRefused(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
            with archive.open(info) as member:
                text = _decode(path, member.read(MAX_FILE_BYTES + 1))
            problem = bpmn_problem(path, text) if kind == "BPMN" else json_problem(path, text)
            if problem:
                raise DraftRefused(problem)
            target[name] = text
        except DraftRefused as refusal:
            problems.extend(refusal.problems)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError, OSError):
            problems.append(f"{path}: cannot be unpacked (damaged, encrypted or compressed in an unusual way)")
    if not problems and not files.bpmn_files:
        problems.append(f"{zip_name} has no .bpmn file at its top level")
    if problems:
        raise DraftRefused(problems)
    return files


def zip_of(bpmn_files: dict[str, str], forms: dict[str, str]) -> bytes:
    """The layout `ecaf processes deploy DIR` reads: *.bpmn at the top and forms/*.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in [*sorted(bpmn_files.items()), *((f"forms/{n}", t) for n, t in sorted(forms.items()))]:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))  # the same files give the same zip
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()

