"""A process version as files, so the procedure can be kept in git: `ecaf processes export` writes
exactly what `ecaf processes deploy` reads back (the same files, so the same content hash)."""
from __future__ import annotations

from pathlib import Path

from app.engine.errors import EngineError
from app.models import ProcessVersion


class ExportRefused(EngineError):
    pass


def _plain(name: str, suffix: str) -> bool:
    return Path(name).name == name and name.endswith(suffix) and not name.startswith(".")


def _existing(directory: Path) -> list[Path]:
    forms = directory / "forms"
    return sorted(directory.glob("*.bpmn")) + (sorted(forms.glob("*.json")) if forms.is_dir() else [])


def write_version(version: ProcessVersion, directory: Path, *, overwrite: bool = False) -> list[Path]:
    """Write the version's BPMN files to DIRECTORY and its forms to DIRECTORY/forms."""
    odd = [n for n in version.bpmn_files if not _plain(n, ".bpmn")] + \
        [n for n in version.forms if not _plain(n, ".json")]
    if odd:
        raise ExportRefused(f"{version.label} has files that would not be read back from a directory: "
                            f"{', '.join(sorted(odd))}")
    directory = Path(directory)
    existing = _existing(directory) if directory.is_dir() else []
    if existing and not overwrite:
        raise ExportRefused(f"{directory} already holds a process model ({existing[0].name}, ...): "
                            "choose an empty directory, or --overwrite to replace it")
    (directory / "forms").mkdir(parents=True, exist_ok=True)
    wanted = {directory / n: t for n, t in version.bpmn_files.items()}
    wanted |= {directory / "forms" / n: t for n, t in version.forms.items()}
    for stale in set(existing) - set(wanted):
        stale.unlink()  # the directory must hold exactly this version, or its hash would differ
    for path, text in sorted(wanted.items()):
        path.write_bytes(text.encode("utf-8"))
    return sorted(wanted)
