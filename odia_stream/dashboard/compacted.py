"""A compacted topic folded as a table: the last value per key wins, a tombstone deletes the key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["CompactedTable"]

V = TypeVar("V")


class CompactedTable(Generic[V]):
    """Latest value per record key, as a compacted topic keeps it once compaction has run.

    Records are applied in topic order (a key lives in one partition, so per-key order is the
    partition's). A value must name its own key (``key_of``): a record whose key differs is a
    producer bug, refused with ``ValueError`` rather than shown under the wrong key.

    >>> t = CompactedTable(lambda v: v["id"], "id")
    >>> t.apply("a", {"id": "a", "n": 1}); t.apply("a", {"id": "a", "n": 2}); len(t), t.get("a")["n"]
    (1, 2)
    >>> t.apply("a", None); t.get("a") is None
    True
    """

    def __init__(self, key_of: Callable[[V], str], key_name: str) -> None:
        self._key_of = key_of
        self._key_name = key_name
        self._latest: dict[str, V] = {}

    def apply(self, key: str, value: V | None) -> None:
        """Fold one record; ``None`` is a tombstone."""
        if value is None:
            self._latest.pop(key, None)
            return
        own = self._key_of(value)
        if own != key:
            raise ValueError(f"record key {key!r} differs from its {self._key_name} {own!r}")
        self._latest[key] = value

    def get(self, key: str) -> V | None:
        """The latest value of ``key``, if any."""
        return self._latest.get(key)

    def values(self) -> Iterator[V]:
        """The latest values, in no particular order."""
        return iter(self._latest.values())

    def items(self) -> list[tuple[str, V]]:
        """``(key, value)`` pairs sorted by key."""
        return sorted(self._latest.items())

    def __len__(self) -> int:
        return len(self._latest)
