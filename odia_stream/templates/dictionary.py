"""Entity dictionary: entity type -> surface values, with counts and provenance.

Values are keyed by their normalised form (:func:`~odia_stream.templates.text.normalize_text`:
NFKC + casefold, whitespace squeezed), so ``"Jay Chou"`` and ``"jay  chou"`` are one entry;
the entry's ``value``, its canonical form, is its most frequent surface form (ties: the first in
code-point order), so it does not depend on the order values arrive in. Type names are stripped and
lowercased.

    >>> d = EntityDictionary()
    >>> d.add("Singer", "周杰伦")
    True
    >>> d.add("singer", "周杰伦")          # seen again: count goes up, not a new entry
    False
    >>> d.get("singer", "周杰伦")
    EntryInfo(entity_type='singer', value='周杰伦', count=2, source='learned')
    >>> len(d), d.types()
    (1, ['singer'])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from .io import EntityFileError, EntityRow, read_entity_file, write_dictionary
from .text import normalize_text, normalize_type

__all__ = ["EntityDictionary", "EntryInfo"]

_SOURCES = ("file", "learned")


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """A read-only view of one dictionary entry."""

    entity_type: str
    value: str
    count: int
    source: str


@dataclass(slots=True)
class _Entry:
    value: str
    count: int
    source: str
    #: Count per surface form (``value`` is the most frequent, ties: the smallest).
    surfaces: dict[str, int]

    def add_surface(self, surface: str, count: int) -> None:
        n = self.surfaces[surface] = self.surfaces.get(surface, 0) + count
        best = self.surfaces[self.value]
        if n > best or (n == best and surface < self.value):
            self.value = surface


class EntityDictionary:
    """Entity type -> set of surface values, with per-value counts and source.

    ``source`` is ``"file"`` for entries that came from a user-supplied file (it stays
    ``"file"`` even if the value is later learned too) and ``"learned"`` otherwise.
    ``version`` increases on every change; matchers use it to rebuild lazily.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, _Entry]] = {}
        # normalised value -> {type: count}; and its types ranked by (-count, type)
        self._key_types: dict[str, dict[str, int]] = {}
        self._ranked: dict[str, tuple[str, ...]] = {}
        self._new_keys: list[str] = []  # keys that appeared, in order (for incremental matchers)
        self._epoch = 0  # bumped when keys disappear (matchers must rebuild)
        self._version = 0

    # ------------------------------------------------------------------ changes
    def add(self, entity_type: str, value: str, source: str = "learned", count: int = 1) -> bool:
        """Record ``value`` under ``entity_type``; return True if the entry is new.

        Raises ``ValueError`` for an invalid type name, an empty value, a value with
        control characters, an unknown source or a count < 1; ``TypeError`` for a
        value that is not a string.
        """
        etype, surface, key = self._validate(entity_type, value, source, count)
        values = self._entries.setdefault(etype, {})
        entry = values.get(key)
        is_new = entry is None
        if entry is None:
            values[key] = _Entry(surface, count, source, {surface: count})
        else:
            entry.add_surface(surface, count)
            entry.count += count
            if source == "file":
                entry.source = "file"
        types = self._key_types.get(key)
        if types is None:
            types = self._key_types[key] = {}
            self._new_keys.append(key)
        types[etype] = types.get(etype, 0) + count
        self._ranked[key] = (
            (etype,) if len(types) == 1 else tuple(sorted(types, key=lambda t: (-types[t], t)))
        )
        self._version += 1
        return is_new

    @staticmethod
    def _validate(entity_type: str, value: str, source: str, count: int) -> tuple[str, str, str]:
        etype = normalize_type(entity_type)
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        if not isinstance(value, str):
            raise TypeError(f"value must be a string, got {type(value).__name__}")
        surface = value.strip()
        if any(ch < " " or ch == "\x7f" for ch in surface):
            raise ValueError(f"value {value!r} contains control characters")
        key = normalize_text(surface).strip()
        if not key:
            raise ValueError(f"value {value!r} is empty after normalisation")
        return etype, surface, key

    def remove(self, entity_type: str, value: str) -> bool:
        """Delete one entry; return True if it existed."""
        etype = normalize_type(entity_type)
        key = normalize_text(value.strip()).strip()
        values = self._entries.get(etype)
        if not values or key not in values:
            return False
        del values[key]
        if not values:
            del self._entries[etype]
        types = self._key_types[key]
        del types[etype]
        if types:
            self._ranked[key] = tuple(sorted(types, key=lambda t: (-types[t], t)))
        else:
            del self._key_types[key], self._ranked[key]
            self._epoch += 1
            self._new_keys = [k for k in self._new_keys if k in self._key_types]
        self._version += 1
        return True

    def clear(self) -> None:
        """Remove every entry."""
        epoch, version = self._epoch, self._version
        self.__init__()  # type: ignore[misc]
        # keep counters monotonic for matchers that already saw this dictionary
        self._epoch, self._version = epoch + 1, version + 1

    # ------------------------------------------------------------------ queries
    @property
    def version(self) -> int:
        """Monotonic change counter."""
        return self._version

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2):
            return False
        return self.get(*item) is not None

    def types(self) -> list[str]:
        """Entity types present, sorted."""
        return sorted(self._entries)

    def values(self, entity_type: str) -> list[str]:
        """Surface values of one type, most frequent first (ties alphabetical)."""
        values = self._entries.get(normalize_type(entity_type), {})
        return [e.value for e in sorted(values.values(), key=lambda e: (-e.count, e.value))]

    def get(self, entity_type: str, value: str) -> EntryInfo | None:
        """The entry for ``(entity_type, value)`` (value compared normalised), or None."""
        try:
            etype = normalize_type(entity_type)
        except (TypeError, ValueError):
            return None
        entry = self._entries.get(etype, {}).get(normalize_text(value.strip()).strip())
        return None if entry is None else EntryInfo(etype, entry.value, entry.count, entry.source)

    def entries(self) -> Iterator[EntryInfo]:
        """All entries, by type then normalised value."""
        for etype in sorted(self._entries):
            values = self._entries[etype]
            for key in sorted(values):
                e = values[key]
                yield EntryInfo(etype, e.value, e.count, e.source)

    def types_of(self, value: str) -> tuple[str, ...]:
        """Types recorded for a surface value, preferred first (most frequent, tie -> alphabetical)."""
        return self._ranked.get(normalize_text(value.strip()).strip(), ())

    def keys(self) -> list[str]:
        """All distinct normalised values (across types)."""
        return list(self._key_types)

    # ------------------------------------------------------------------ files
    def load(self, path: str | os.PathLike[str]) -> int:
        """Merge entries from a TSV/JSON file (formats: :mod:`odia_stream.templates.io`).

        Returns the number of new entries. The file is fully parsed before anything is
        added, so a ``ValueError`` leaves the dictionary unchanged.
        """
        rows = read_entity_file(path)
        for i, row in enumerate(rows, start=1):  # validate everything before changing anything
            try:
                self._validate(row.entity_type, row.value, row.source, row.count)
            except ValueError as exc:
                where = f":{row.line}" if row.line is not None else f": entry {i}"
                raise EntityFileError(
                    f"{os.fspath(path)}{where}: bad entry ({row.entity_type!r}, {row.value!r}): {exc}"
                ) from None
        added = 0
        for row in rows:
            added += self.add(row.entity_type, row.value, source=row.source, count=row.count)
        return added

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the dictionary as JSON (atomically); :meth:`load` reads it back identically."""
        write_dictionary(path, (EntityRow(e.entity_type, e.value, e.count, e.source) for e in self.entries()))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EntityDictionary:
        """A new dictionary loaded from ``path``."""
        d = cls()
        d.load(path)
        return d

    def __repr__(self) -> str:
        return f"EntityDictionary({len(self)} entries, {len(self._entries)} types, version={self._version})"
