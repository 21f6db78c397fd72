"""Atomic writes: a reader sees a file or folder either whole (old or new) or not at all.

A file is written to a temporary file beside it (same folder, so same filesystem), flushed and
fsynced, renamed over the target with ``os.replace``, and the folder is fsynced so the rename
survives a crash. A folder is built under a temporary name beside its final place and renamed
into place once complete.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     write_json_atomic(Path(tmp) / "meta.json", {"dim": 8, "id": "e5"})
...     write_text_atomic(Path(tmp) / "CURRENT", "a-1\\n")
...     print((Path(tmp) / "meta.json").read_text(), end="")
...     print(sorted(p.name for p in Path(tmp).iterdir()))  # no temporary file is left behind
{
  "dim": 8,
  "id": "e5"
}
['CURRENT', 'meta.json']
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "COMPLETE_MARKER",
    "build_folder_once",
    "fsync_dir",
    "is_complete",
    "publish_folder",
    "staging_folder",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: Written last, inside the temporary folder, before :func:`build_folder_once` renames it into place.
COMPLETE_MARKER = "odia-unpacked.json"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the parent folder must exist.

    On failure the target is unchanged and the temporary file is removed.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_bytes_atomic(Path(tmp) / "blob.bin", b"\\x00\\x01")
    ...     (Path(tmp) / "blob.bin").read_bytes()
    b'\\x00\\x01'
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """:func:`write_bytes_atomic` of ``text`` encoded (no newline translation)."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(
    path: str | os.PathLike[str],
    data: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = True,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> None:
    """:func:`write_text_atomic` of ``data`` as JSON (``json.dumps`` options) plus a final newline.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_json_atomic(Path(tmp) / "e.json", {"歌手": 1}, indent=None, ensure_ascii=False)
    ...     (Path(tmp) / "e.json").read_text(encoding="utf-8")
    '{"歌手": 1}\\n'
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=default)
    write_text_atomic(path, text + "\n")


@contextlib.contextmanager
def staging_folder(parent: str | os.PathLike[str], prefix: str) -> Iterator[Path]:
    """A fresh temporary folder in ``parent`` (``<prefix><random>.tmp``), removed with what is left in it.

    Build a folder inside it and rename that into place (:func:`publish_folder`) before leaving.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as parent:
    ...     with staging_folder(parent, ".data.") as tmp:
    ...         (tmp / "out").mkdir()
    ...         publish_folder(tmp / "out", Path(parent) / "data", lambda f: f.is_dir())
    ...     sorted(p.name for p in Path(parent).iterdir())
    ['data']
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(staged: Path, final: Path, complete: Callable[[Path], bool]) -> None:
    """Rename the finished folder ``staged`` to ``final``, unless ``final`` is ``complete`` already.

    ``staged`` must be on the same filesystem (beside ``final``, e.g. in a :func:`staging_folder`),
    so the rename is atomic. An incomplete ``final`` (interrupted, or written by an older
    non-atomic writer) is removed first. If another process publishes ``final`` meanwhile, the
    rename fails and its complete folder is kept.
    """
    if complete(final):
        return
    if final.exists():
        shutil.rmtree(final)
    try:
        os.rename(staged, final)
    except OSError:
        if not complete(final):  # not a lost race: a real failure
            raise


def is_complete(folder: Path) -> bool:
    """True when ``folder`` was finished by :func:`build_folder_once`."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def build_folder_once(final: Path, build: Callable[[Path], None], metadata: Mapping[str, Any]) -> Path:
    """Return ``final``, first running ``build(tmp)`` and renaming ``tmp`` to it if not complete.

    ``build`` receives a folder path that does not exist yet and must create it. The temporary
    folder sits beside ``final`` and is removed if ``build`` fails; :data:`COMPLETE_MARKER`
    (holding ``metadata``) is written into it last. A ``final`` without the marker is replaced;
    if another process finishes first, its folder is used.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     final = Path(tmp) / "model"
    ...     build_folder_once(final, lambda out: out.mkdir(), {"source": "demo"}) == final
    ...     build_folder_once(final, lambda out: 1 / 0, {}) == final  # complete: not rebuilt
    True
    True
    """
    final = Path(final)
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with staging_folder(final.parent, prefix=f".{final.name}.") as tmp:
        staged = tmp / "folder"
        build(staged)
        (staged / COMPLETE_MARKER).write_text(json.dumps(dict(metadata), indent=2, sort_keys=True) + "\n")
        publish_folder(staged, final, is_complete)
    return final
