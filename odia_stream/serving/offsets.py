"""Which consumer offsets may be committed while requests finish out of order.

Requests are answered concurrently, so a later offset can finish before an earlier one. A
partition's committable offset is its lowest unfinished offset (everything below it is answered),
or one past the highest finished offset when nothing is pending. Committing only that means a
crash re-answers the unfinished requests instead of losing them.

A revoked partition is forgotten; taking it back later starts a new *assignment* of it, and a
request that finishes after its partition was forgotten (it started in an earlier assignment) is
ignored rather than mistaken for the same offset read again. What was answered is remembered
(:meth:`OffsetTracker.resume_offset`): if the final commit of a revoked partition failed (a broker
may refuse commits once a rebalance began) and the partition comes back, reading resumes there
instead of at the stale committed offset (:meth:`OffsetTracker.resume_after`).

A message delivered twice within one assignment (the client can hand out an offset again, e.g.
messages fetched before a rebalance returned in the same batch as the ones read again after it)
is recognised: :meth:`OffsetTracker.started` returns ``None`` for an offset this assignment took up
already (open, or answered), so it is answered once.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Started/finished offsets per partition (any hashable key, e.g. ``(topic, partition)``)."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, set[int]] = {}
        self._next: dict[Hashable, int] = {}
        self._committed: dict[Hashable, int] = {}
        #: How often each partition was forgotten: the number of its current assignment.
        self._assignment: dict[Hashable, int] = {}
        #: Per forgotten partition, its committable offset when it was forgotten.
        self._resume: dict[Hashable, int] = {}
        #: Per partition, the offset ranges ``[lo, hi]`` its current assignment took up (sorted,
        #: disjoint): a delivery goes up one offset at a time from where reading started, so an
        #: offset skipped inside a range was never in the log (compacted, a transaction marker).
        self._runs: dict[Hashable, list[list[int]]] = {}
        #: Per partition, the index in ``_runs`` of the range the last delivery extended.
        self._current: dict[Hashable, int] = {}

    def started(self, partition: Hashable, offset: int) -> int | None:
        """An offset was taken up; returns the partition's assignment number, to pass to
        :meth:`finished`, or ``None`` when this assignment took the offset up before (a repeated
        delivery: do not answer it again)."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if not self._take(partition, offset):
            return None
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)
        return self._assignment.get(partition, 0)

    def _take(self, partition: Hashable, offset: int) -> bool:
        """Record ``offset`` in the partition's taken ranges; ``False`` when it lies in one already."""
        runs = self._runs.setdefault(partition, [])
        i = bisect.bisect_right(runs, offset, key=lambda r: r[0]) - 1  # the range starting at or below
        if i >= 0 and offset <= runs[i][1]:
            return False
        cur = self._current.get(partition)
        if cur is not None and cur == i:  # reading goes on past the current range (before the next)
            runs[cur][1] = offset
        else:  # reading (re)started here
            cur = i + 1
            runs.insert(cur, [offset, offset])
            if cur > 0 and runs[cur - 1][1] + 1 >= offset:
                runs[cur - 1][1] = offset
                del runs[cur]
                cur -= 1
        if cur + 1 < len(runs) and runs[cur + 1][0] <= runs[cur][1] + 1:
            runs[cur][1] = max(runs[cur][1], runs[cur + 1][1])
            del runs[cur + 1]
        self._current[partition] = cur
        return True

    def finished(self, partition: Hashable, offset: int, assignment: int | None = None) -> bool:
        """An offset's response is delivered; ``False`` when its partition was forgotten meanwhile
        (``assignment``, from :meth:`started`, is older than the partition's current one)."""
        if assignment is not None and assignment != self._assignment.get(partition, 0):
            return False
        pending = self._pending.get(partition)
        if pending is None:
            return False
        if offset not in pending:
            raise KeyError(f"offset {offset} of {partition!r} was not started (or finished twice)")
        pending.discard(offset)
        return True

    def pending(self, partitions: Iterable[Hashable] | None = None) -> int:
        """Offsets started and not finished, over ``partitions`` (default: all)."""
        if partitions is None:
            return sum(len(p) for p in self._pending.values())
        return sum(len(self._pending.get(p, ())) for p in set(partitions))

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

    def release(self, partitions: Iterable[Hashable]) -> dict[Hashable, int]:
        """Give ``partitions`` up: their offsets still to commit (as :meth:`to_commit`), then
        :meth:`forget` them."""
        keys = set(partitions)
        offsets = {p: o for p, o in self.to_commit().items() if p in keys}
        self.forget(keys)
        return offsets

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Drop partitions (revoked in a rebalance); their open offsets will not finish here."""
        committable = self.committable()
        for p in partitions:
            if p in committable:
                self._resume[p] = committable[p]
            self._assignment[p] = self._assignment.get(p, 0) + 1
            self._pending.pop(p, None)
            self._next.pop(p, None)
            self._committed.pop(p, None)
            self._runs.pop(p, None)
            self._current.pop(p, None)

    def resume_offset(self, partition: Hashable) -> int | None:
        """Where reading a forgotten ``partition`` again should start at the earliest: everything
        below it was answered here (``None`` when it was never forgotten with progress)."""
        return self._resume.get(partition)

    def resume_after(self, committed: Mapping[Hashable, int]) -> dict[Hashable, int]:
        """Where partitions read again must start, given the group's ``committed`` offsets (below 0:
        none): each partition whose :meth:`resume_offset` is ahead of its committed offset starts
        there (and is :meth:`resumed`); the others start at the committed offset (not returned)."""
        starts = {
            p: resume
            for p, c in committed.items()
            if (resume := self._resume.get(p)) is not None and c < resume
        }
        for p, offset in starts.items():
            self.resumed(p, offset)
        return starts

    def resumed(self, partition: Hashable, offset: int) -> None:
        """Reading ``partition`` starts again at ``offset``: it is committable (and committed next)."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._next[partition] = max(self._next.get(partition, 0), offset)
        self._resume.pop(partition, None)
