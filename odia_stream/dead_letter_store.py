"""Where rejected values too large for a dead-letter record are kept whole.

A dead letter carries its rejected value inline up to ``dead_letters.max_inline_bytes`` (so the
record always fits the dead-letter topic); a longer value is written whole here, named by its
sha256, and the letter names the file (:meth:`~schemas.DeadLetter.of_record`). The default is a
folder under the state dir; ``dead_letters.store_url`` may name a folder or any fsspec URL
(``s3://bucket/odia-dlq``, ``gcs://…``) where that filesystem's package is installed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

from odia_stream.atomic_files import write_bytes_atomic
from odia_stream.settings import OdiaSettings

__all__ = ["DeadLetterStore", "open_dead_letter_store"]


class DeadLetterStore:
    """Content-addressed files ``<root>/<sha256>.bin`` (writing the same value twice is one file)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        parsed = urlparse(self.root)
        #: A local folder (a path or ``file://``), written atomically; else an fsspec URL.
        self.local: Path | None = Path(parsed.path if parsed.scheme == "file" else self.root) if parsed.scheme in (
            "", "file") else None

    def put(self, value: bytes, sha256: str | None = None) -> str:
        """Keep ``value``; returns its URI. ``sha256`` (hex), when given, must be the value's."""
        digest = hashlib.sha256(value).hexdigest()
        if sha256 is not None and sha256 != digest:
            raise ValueError(f"sha256 {sha256} is not the value's ({digest})")
        if self.local is not None:
            path = self.local / f"{digest}.bin"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(path, value)
            return path.resolve().as_uri()
        import fsspec  # only for remote stores

        uri = f"{self.root}/{digest}.bin"
        with fsspec.open(uri, "wb") as f:
            f.write(value)
        return uri

    def get(self, uri: str) -> bytes:
        """The value kept at ``uri`` (one :meth:`put` returned)."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return Path(parsed.path).read_bytes()
        import fsspec

        with fsspec.open(uri, "rb") as f:
            return f.read()  # type: ignore[no-any-return]


def open_dead_letter_store(settings: OdiaSettings) -> DeadLetterStore:
    """The store the settings name (default: ``<state_dir>/dead-letters``)."""
    return DeadLetterStore(settings.dead_letters.store_url or str(settings.state_dir.resolve() / "dead-letters"))
