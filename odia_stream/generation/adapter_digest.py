"""Content hash of an adapter folder, and the version name derived from it."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Prefix of adapter versions: ``a-`` + the first 12 hex digits of the sha256.
VERSION_PREFIX = "a-"
VERSION_HEX_DIGITS = 12
_CHUNK = 1 << 20


def adapter_files(folder: Path) -> list[Path]:
    """Regular files under ``folder`` (recursively), sorted by their relative POSIX path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"adapter folder {folder} does not exist")
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def adapter_sha256(folder: Path) -> str:
    """sha256 over an adapter folder's files, independent of timestamps and listing order.

    For each regular file, in order of relative POSIX path: the path (UTF-8), a NUL byte, the
    file size as 8 big-endian bytes, then the file's bytes. An empty folder is an error.
    """
    folder = Path(folder)
    files = adapter_files(folder)
    if not files:
        raise ValueError(f"adapter folder {folder} holds no files")
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(folder).as_posix().encode("utf-8"))
        h.update(b"\0")
        h.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def version_of(sha256: str) -> str:
    """The version name of an adapter with this sha256 (``a-`` + 12 hex digits)."""
    if len(sha256) != 64:
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return VERSION_PREFIX + sha256[:VERSION_HEX_DIGITS]
