"""Content-addressed registry of LoRA adapters, with a promoted "current" pointer and rollback.

Layout under the registry root (a local path; ``file://`` URIs are accepted, other schemes are not
supported yet and fail clearly)::

    <root>/a-3f2c9e0b1d4a/adapter/...   the adapter's files (read-only once registered)
    <root>/a-3f2c9e0b1d4a/entry.json    version, sha256, base model, eval metrics, router version, ...
    <root>/CURRENT                      the promoted version (atomically replaced)
    <root>/history.jsonl                append-only promote / rollback log (the source of truth)

A version is ``a-`` + the first 12 hex digits of the sha256 of the adapter's files
(:func:`odia_stream.generation.adapter_digest.adapter_sha256`), so names are never reused for other
content: registering identical content again returns the existing entry, and a prefix collision
with different content is refused. A version folder appears only complete (staged beside the
root and renamed into place). Mutations take an exclusive file lock on ``<root>/.lock``.

Promotions form a stack replayed from ``history.jsonl``: ``promote`` pushes a version,
``rollback(n)`` pops ``n`` and the version below becomes current again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field

from odia_stream.atomic_files import fsync_dir, staging_folder, write_text_atomic
from odia_stream.generation.adapter_digest import adapter_sha256, version_of
from odia_stream.generation.protocol import AdapterRef
from odia_stream.prompting.format import PROMPT_FORMAT_VERSION
from schemas import AdapterIdentity, ModelUpdate
from schemas.common import utc_now

if TYPE_CHECKING:
    from odia_stream.settings import OdiaSettings

__all__ = [
    "AdapterEntry",
    "AdapterNotFound",
    "AdapterRegistry",
    "HistoryEvent",
    "RegistryError",
    "UnsupportedRegistryURI",
    "open_registry",
    "path_from_uri",
    "registry_root",
]

ENTRY_FILE = "entry.json"
ADAPTER_SUBDIR = "adapter"
CURRENT_FILE = "CURRENT"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
STAGING_DIR = ".staging"


class RegistryError(RuntimeError):
    """A registry operation cannot be done (integrity, nothing to roll back to, a collision)."""


class AdapterNotFound(RegistryError, KeyError):
    """No adapter with that version is registered."""


class UnsupportedRegistryURI(ValueError):
    """The adapter registry setting is a URI scheme other than a local path or ``file://``."""


class AdapterEntry(AdapterIdentity):
    """A registered adapter: what ``entry.json`` holds, plus where its files are (``path``)."""

    #: The version this one was trained after (the current one then), if any.
    parent: str | None = None
    #: The adapter's folder (not stored in ``entry.json``: the root may move).
    path: Path = Field(default=Path(), exclude=True)

    def ref(self) -> AdapterRef:
        """The :class:`AdapterRef` a generator loads."""
        return AdapterRef(version=self.version, path=self.path, sha256=self.sha256, base_model=self.base_model)


class HistoryEvent(BaseModel):
    """One line of ``history.jsonl``: a promotion or a rollback and what became current."""

    action: Literal["promote", "rollback"]
    version: str
    previous: str | None = None
    steps: int = 1
    at: datetime = Field(default_factory=utc_now)


def path_from_uri(uri: str) -> Path:
    """A local path from a path or ``file://`` URI; any other scheme → :class:`UnsupportedRegistryURI`."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnsupportedRegistryURI(f"{uri!r}: file:// URIs must be local (no host)")
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise UnsupportedRegistryURI(
            f"adapter registry {uri!r}: only local paths and file:// URIs are supported now, not {parsed.scheme}://"
        )
    return Path(uri).expanduser()


def registry_root(settings: OdiaSettings) -> Path:
    """The registry root of the settings: ``trainer.adapter_registry`` or ``<state_dir>/adapters``."""
    configured = settings.trainer.adapter_registry
    return path_from_uri(configured) if configured else settings.state_dir / "adapters"


def open_registry(settings: OdiaSettings) -> AdapterRegistry:
    """The adapter registry the settings point at (created if missing)."""
    return AdapterRegistry(registry_root(settings))


def _make_read_only(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class AdapterRegistry:
    """Adapters under ``root``, addressed by content (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = path_from_uri(root) if isinstance(root, str) else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._repair_current_file()

    def _repair_current_file(self) -> None:
        """Rewrite ``CURRENT`` from the history if a crash fell between the two writes."""
        with self._locked():
            stack = self.promotion_stack()
            path = self.root / CURRENT_FILE
            written = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
            if stack and written != stack[-1]:
                write_text_atomic(path, stack[-1] + "\n")

    # -- reading -----------------------------------------------------------------------------

    def _entry_at(self, folder: Path) -> AdapterEntry:
        data = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
        return AdapterEntry.model_validate({**data, "path": folder / ADAPTER_SUBDIR})

    def get(self, version: str) -> AdapterEntry:
        """The entry of ``version`` (:class:`AdapterNotFound` if it is not registered)."""
        folder = self.root / version
        if not version or "/" in version or version.startswith(".") or not (folder / ENTRY_FILE).is_file():
            raise AdapterNotFound(f"no adapter {version!r} in {self.root}")
        return self._entry_at(folder)

    def list(self) -> list[AdapterEntry]:
        """Every registered adapter, oldest first."""
        entries = [self._entry_at(p) for p in self.root.iterdir() if (p / ENTRY_FILE).is_file()]
        return sorted(entries, key=lambda e: (e.created_at, e.version))

    def verify(self, version: str) -> bool:
        """True when ``version``'s files still hash to its recorded sha256."""
        entry = self.get(version)
        try:
            return adapter_sha256(entry.path) == entry.sha256
        except (OSError, ValueError):
            return False

    def history(self) -> list[HistoryEvent]:
        """Promotions and rollbacks, oldest first (a torn last line from a crash is skipped)."""
        path = self.root / HISTORY_FILE
        if not path.is_file():
            return []
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                events.append(HistoryEvent.model_validate_json(line))
            except ValueError:
                continue
        return events

    def promotion_stack(self) -> list[str]:
        """Promoted versions, bottom first, replayed from the history; the last one is current."""
        stack: list[str] = []
        for event in self.history():
            if event.action == "promote":
                if not stack or stack[-1] != event.version:
                    stack.append(event.version)
            else:
                del stack[len(stack) - event.steps :]
        return stack

    def current(self) -> AdapterEntry | None:
        """The promoted adapter (top of the promotion stack), or ``None`` before the first promotion.

        ``CURRENT`` holds the same version for readers outside Python.
        """
        stack = self.promotion_stack()
        return self.get(stack[-1]) if stack else None

    # -- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def register(
        self,
        adapter_dir: Path,
        *,
        base_model: str,
        eval_metrics: Mapping[str, float] | None = None,
        router_version: str | None = None,
        parent: str | None = None,
        prompt_format: int = PROMPT_FORMAT_VERSION,
    ) -> AdapterEntry:
        """Copy ``adapter_dir`` into the registry under its content version and return its entry.
        ``prompt_format``: the prompt format it was trained on (the trainer passes its settings').

        Identical content already registered → the existing entry (its metadata is kept).
        """
        adapter_dir = Path(adapter_dir)
        sha = adapter_sha256(adapter_dir)
        version = version_of(sha)
        if parent is not None:
            self.get(parent)
        with self._locked():
            final = self.root / version
            if (final / ENTRY_FILE).is_file():
                existing = self._entry_at(final)
                if existing.sha256 != sha:
                    raise RegistryError(f"version {version} is taken by other content ({existing.sha256})")
                return existing
            staging_root = self.root / STAGING_DIR
            staging_root.mkdir(exist_ok=True)
            with staging_folder(staging_root, prefix=f"{version}.") as staged:
                shutil.copytree(adapter_dir, staged / ADAPTER_SUBDIR, symlinks=False)
                copied = adapter_sha256(staged / ADAPTER_SUBDIR)
                if copied != sha:
                    raise RegistryError(f"{adapter_dir} changed while it was being registered")
                entry = AdapterEntry(
                    version=version,
                    sha256=sha,
                    base_model=base_model,
                    eval_metrics=dict(eval_metrics or {}),
                    router_version=router_version,
                    prompt_format=prompt_format,
                    parent=parent,
                    path=final / ADAPTER_SUBDIR,
                )
                (staged / ENTRY_FILE).write_text(entry.model_dump_json(indent=2) + "\n", encoding="utf-8")
                _make_read_only(staged / ADAPTER_SUBDIR)
                os.rename(staged, final)
                fsync_dir(self.root)
            return entry

    def _append_history(self, event: HistoryEvent) -> None:
        path = self.root / HISTORY_FILE
        with path.open("ab") as f:
            if f.tell() > 0:
                with path.open("rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":  # a torn line from a crash: close it off
                        f.write(b"\n")
            f.write(event.model_dump_json().encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def _set_current(self, event: HistoryEvent) -> None:
        self._append_history(event)
        write_text_atomic(self.root / CURRENT_FILE, event.version + "\n")

    def _require_intact(self, version: str) -> AdapterEntry:
        entry = self.get(version)
        if not self.verify(version):
            raise RegistryError(f"adapter {version} fails its sha256 check; refusing to make it current")
        return entry

    def promote(self, version: str) -> AdapterEntry:
        """Make ``version`` current (verified first); promoting the current version changes nothing."""
        with self._locked():
            entry = self._require_intact(version)
            stack = self.promotion_stack()
            previous = stack[-1] if stack else None
            if previous != version:
                self._set_current(HistoryEvent(action="promote", version=version, previous=previous))
            return entry

    def rollback(self, steps: int = 1) -> AdapterEntry:
        """Undo the last ``steps`` promotions: the version promoted before them becomes current again."""
        if steps < 1:
            raise ValueError("rollback steps must be >= 1")
        with self._locked():
            stack = self.promotion_stack()
            if len(stack) <= steps:
                raise RegistryError(
                    f"cannot roll back {steps} step(s): {len(stack)} promoted version(s) on the stack"
                )
            target = stack[-1 - steps]
            entry = self._require_intact(target)
            self._set_current(HistoryEvent(action="rollback", version=target, previous=stack[-1], steps=steps))
            return entry

    # -- publishing --------------------------------------------------------------------------

    @staticmethod
    def to_model_update(
        entry: AdapterEntry, generator_name: str, *, previous_version: str | None = None
    ) -> ModelUpdate:
        """The ``ModelUpdate`` announcing ``entry`` (adapter URI = ``file://`` URI of its folder)."""
        return ModelUpdate(
            **entry.model_dump(include=set(AdapterIdentity.model_fields)),
            generator=generator_name,
            adapter_uri=entry.path.resolve().as_uri(),
            previous_version=previous_version,
        )
