"""Micro-batches aligned to partition offsets, so a replay cuts the stream the same way.

Offsets ``[k*B, (k+1)*B)`` of a partition form batch ``k``. A batch is released when its last
offset or an item of a later window arrives, or by :meth:`OffsetAlignedBatcher.flush` (idle
timeout). With a backlog every batch is complete, so replaying a topic from any committed offset
reproduces the same batches; only idle-time flushes of live traffic cut elsewhere.

>>> b = OffsetAlignedBatcher(batch_size=2)
>>> b.add(SourcedItem("t", 0, 0, "a"))
[]
>>> [[i.payload for i in batch] for batch in b.add(SourcedItem("t", 0, 1, "b"))]
[['a', 'b']]
>>> b.add(SourcedItem("t", 0, 2, "c"))
[]
>>> [[i.payload for i in batch] for batch in b.flush()]
[['c']]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SourcedItem(Generic[T]):
    """A payload with the topic, partition and offset it was read from."""

    topic: str
    partition: int
    offset: int
    payload: T


@dataclass
class _Window(Generic[T]):
    index: int
    items: list[SourcedItem[T]] = field(default_factory=list)
    opened_at: float = field(default_factory=time.monotonic)


class OffsetAlignedBatcher(Generic[T]):
    """Buffer items per (topic, partition) and release offset-aligned windows."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._open: dict[tuple[str, int], _Window[T]] = {}

    def add(self, item: SourcedItem[T]) -> list[list[SourcedItem[T]]]:
        """Buffer ``item``; return the batches it completed (at most one)."""
        key = (item.topic, item.partition)
        window = item.offset // self.batch_size
        released: list[list[SourcedItem[T]]] = []
        current = self._open.get(key)
        if current is not None and current.index != window:
            released.append(current.items)
            current = None
        if current is None:
            current = self._open[key] = _Window(window)
        current.items.append(item)
        if item.offset % self.batch_size == self.batch_size - 1:
            released.append(current.items)
            del self._open[key]
        return released

    def flush(self, older_than_s: float = 0.0) -> list[list[SourcedItem[T]]]:
        """Release partial windows opened at least ``older_than_s`` seconds ago."""
        now = time.monotonic()
        released = []
        for key, window in list(self._open.items()):
            if now - window.opened_at >= older_than_s:
                released.append(window.items)
                del self._open[key]
        return released

    def pending(self) -> int:
        """Items buffered and not yet released."""
        return sum(len(w.items) for w in self._open.values())
