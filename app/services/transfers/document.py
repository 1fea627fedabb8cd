"""Reading a transfer file: JSON, format, schema, the deployment's signature and the checksum.

A transfer file is signed with HMAC-SHA256 under ECAF_TRANSFER_KEY (app/config.py) over the document
without its `signature`, serialized as for the checksum. The key never leaves the deployment, so
nobody holding a copy of a file can change it, or write one, and have it accepted.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from app.config import PROJECT_ROOT, Config, TransferKeyMissing

from .common import (FORMAT, MAX_LISTED_PROBLEMS, SCHEMA_VERSION, SIGNATURE_ALGORITHM, TransferRefused, canonical,
                     checksum)

SCHEMA_PATH = PROJECT_ROOT / "docs" / "episode-export.schema.json"
# Ties a signature to this use of the key: bytes signed for anything else never verify here.
_CONTEXT = b"ecaf-episode-transfer/1\n"


def _mac(document: dict, key: bytes) -> str:
    body = canonical({k: v for k, v in document.items() if k != "signature"})
    return hmac.new(key, _CONTEXT + body, hashlib.sha256).hexdigest()


def sign(document: dict, config: Config) -> dict:
    """The `signature` member for `document` (which already has its `transfer` and `checksum`)."""
    return {"algorithm": SIGNATURE_ALGORITHM, "value": _mac(document, config.transfer_signing_key())}


def signature_matches(document: dict, config: Config) -> bool:
    signature = document.get("signature") or {}
    if signature.get("algorithm") != SIGNATURE_ALGORITHM or not isinstance(signature.get("value"), str):
        return False
    return hmac.compare_digest(signature["value"], _mac(document, config.transfer_signing_key()))


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_problems(document: Any) -> list[str]:
    """Every way the document breaks the export schema, each naming where."""
    validator = Draft202012Validator(schema(), format_checker=FormatChecker())
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(p) for p in error.absolute_path) or "the document"
        problems.append(f"{where}: {error.message[:300]}")
    return problems


def parse(raw: str | bytes | dict, config: Config) -> dict:
    """The document from a file's bytes, checked for format, schema version, schema, that it is an
    export for transfer, its signature and its checksum. The release it names is checked later."""
    if isinstance(raw, (bytes, str)):
        try:
            # Exports are UTF-8; an editor may have added a byte-order mark.
            document = json.loads(raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw)
        except UnicodeDecodeError:
            raise TransferRefused("The file is not UTF-8 text: choose the .json file eCAF gave you when the "
                                  "episode was exported") from None
        except json.JSONDecodeError as exc:
            raise TransferRefused(f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
                                  "Choose the .json file eCAF gave you when the episode was exported") from None
    else:
        document = raw
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferRefused("The file is not an eCAF episode export (its \"format\" is not "
                              f"\"{FORMAT}\")")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise TransferRefused(f"The file uses export schema version {document.get('schema_version')!r}; "
                              f"this eCAF reads schema version {SCHEMA_VERSION} only")
    problems = schema_problems(document)
    if problems:
        raise TransferRefused(f"The file does not match the export schema ({len(problems)} "
                              f"problem{'s' if len(problems) != 1 else ''})", problems[:MAX_LISTED_PROBLEMS])
    if "transfer" not in document or "signature" not in document:
        raise TransferRefused("The file is a plain export (for the family or for the record), not an export for "
                              "transfer. Ask the authority the child has left to release the episode to you, and "
                              "to send the transfer file eCAF gives them then")
    try:
        signed = signature_matches(document, config)
    except TransferKeyMissing:
        raise TransferRefused("This eCAF holds no transfer key, so it cannot check the file's signature: "
                              "contact the eCAF administrator") from None
    if not signed:
        raise TransferRefused("The file's signature does not match: it was changed after it was signed, or it "
                              "was not signed by this eCAF. Ask the authority the child has left for the file "
                              "again")
    if document["checksum"]["value"] != checksum(document):
        raise TransferRefused("The file has been changed since it was exported (its checksum does not match). "
                              "Export the episode again")
    return document
