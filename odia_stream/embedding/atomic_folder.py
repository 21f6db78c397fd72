"""Build a cache folder once, atomically: a half-written folder is never used."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: Written last, inside the temporary folder, before it is renamed into place.
COMPLETE_MARKER = "odia-unpacked.json"


def is_complete(folder: Path) -> bool:
    """True when ``folder`` was finished by :func:`build_folder_once`."""
    return (folder / COMPLETE_MARKER).is_file()


def build_folder_once(final: Path, build: Callable[[Path], None], metadata: Mapping[str, Any]) -> Path:
    """Return ``final``, first running ``build(tmp)`` and renaming ``tmp`` to it if not complete.

    ``build`` receives a folder path that does not exist yet and must create it. The temporary
    folder sits beside ``final`` (same filesystem, so the rename is atomic) and is removed if
    ``build`` fails. A ``final`` without the completion marker (foreign or interrupted by an
    older, non-atomic writer) is replaced. If another process finishes first, its folder is used.
    """
    final = Path(final)
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        staged = tmp / "folder"
        build(staged)
        (staged / COMPLETE_MARKER).write_text(json.dumps(dict(metadata), indent=2, sort_keys=True) + "\n")
        if final.exists() and not is_complete(final):
            shutil.rmtree(final)
        try:
            os.rename(staged, final)
        except OSError:
            if not is_complete(final):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
