"""Which consumer offsets may be committed while requests finish out of order.

Requests are answered concurrently, so a later offset can finish before an earlier one. A
partition's committable offset is its lowest unfinished offset (everything below it is answered),
or one past the highest finished offset when nothing is pending. Committing only that means a
crash re-answers the unfinished requests instead of losing them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Started/finished offsets per partition (any hashable key, e.g. ``(topic, partition)``)."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, set[int]] = {}
        self._next: dict[Hashable, int] = {}
        self._committed: dict[Hashable, int] = {}

    def started(self, partition: Hashable, offset: int) -> None:
        """An offset was taken up (offsets of a partition arrive in increasing order)."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finished(self, partition: Hashable, offset: int) -> bool:
        """An offset's response is delivered; ``False`` when its partition was forgotten meanwhile."""
        pending = self._pending.get(partition)
        if pending is None:
            return False
        if offset not in pending:
            raise KeyError(f"offset {offset} of {partition!r} was not started (or finished twice)")
        pending.discard(offset)
        return True

    def pending(self) -> int:
        """Offsets started and not finished, over all partitions."""
        return sum(len(p) for p in self._pending.values())

    def committable(self) -> dict[Hashable, int]:
        """Per partition, the offset to commit (the next offset to read after a restart)."""
        out: dict[Hashable, int] = {}
        for partition, nxt in self._next.items():
            pending = self._pending.get(partition)
            out[partition] = min(pending) if pending else nxt
        return out

    def to_commit(self) -> dict[Hashable, int]:
        """Committable offsets that moved since the last :meth:`mark_committed`."""
        return {p: o for p, o in self.committable().items() if self._committed.get(p) != o}

    def mark_committed(self, offsets: dict[Hashable, int]) -> None:
        """Record a successful commit of ``offsets``."""
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Drop partitions (revoked in a rebalance)."""
        for p in partitions:
            self._pending.pop(p, None)
            self._next.pop(p, None)
            self._committed.pop(p, None)
