"""Files eCAF keeps outside the database (evidence, audit checkpoints): written whole or not at all."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_whole(target: Path, content: bytes, *, prefix: str) -> None:
    """Write to a temporary file beside `target`, flush it to disk, then rename: a reader (or a crash)
    never sees half a file, and a failure leaves no temporary file behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
