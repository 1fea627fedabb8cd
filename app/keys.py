"""The keys eCAF holds outside its database: parsing ECAF_TOTP_KEY, the key older releases derived
from SECRET_KEY, and the local key file a development run generates for itself.

Which keys a deployment must set, and when a development key will do, is decided in app/config.py
(`Config.development_keys_allowed`); this module only makes and reads keys.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)
_announced: set[Path] = set()
GENERATE_HINT = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def fernet_keys(text: str) -> list[str]:
    """The comma-separated Fernet keys of ECAF_TOTP_KEY, newest first. ValueError names a bad one."""
    found = [part.strip() for part in text.split(",") if part.strip()]
    if not found:
        raise ValueError("it holds no key")
    for number, key in enumerate(found, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(f"key {number} of {len(found)} is not a Fernet key (32 bytes, URL-safe base64): "
                             f"make one with {GENERATE_HINT}") from None
    return found


def derived_totp_key(secret_key: str) -> str:
    """The Fernet key releases before ECAF_TOTP_KEY was required derived from SECRET_KEY. It only ever
    decrypts secrets sealed by those releases, until `ecaf keys rotate-totp` re-encrypts them."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"ecaf-totp-secrets:" + secret_key.encode()).digest()).decode()


def development_keys(path: Path) -> dict[str, str]:
    """SECRET_KEY and ECAF_TOTP_KEY for this machine's development run, from `path` (JSON, readable by its
    owner only), generated on first use and reused by every later start."""
    path = Path(path)
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        keys = _generate(path)
    if not (isinstance(keys, dict) and isinstance(keys.get("SECRET_KEY"), str)
            and isinstance(keys.get("ECAF_TOTP_KEY"), str)):
        raise ValueError(f"{path} is not an eCAF development key file: delete it and a new one is made")
    if path not in _announced:
        _announced.add(path)
        log.info("using the development keys in %s (SECRET_KEY, ECAF_TOTP_KEY): this machine only", path)
    return keys


def _generate(path: Path) -> dict[str, str]:
    keys = {"SECRET_KEY": secrets.token_hex(32), "ECAF_TOTP_KEY": Fernet.generate_key().decode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(keys, file, indent=2)
    try:
        os.link(draft, path)  # atomic, and refuses to replace a file another process made first
    except FileExistsError:
        return json.loads(path.read_text(encoding="utf-8"))
    finally:
        draft.unlink()
    _announced.add(path)
    log.warning("generated development keys (SECRET_KEY, ECAF_TOTP_KEY) in %s, readable by you only; later "
                "starts reuse them. They are for this machine's demo: a deployment sets its own.", path)
    return keys
