"""The request partitions of one replica: which offsets are open, what is committed, and what
happens when the group moves partitions (the bookkeeping itself is the pure
:class:`~odia_stream.serving.OffsetTracker`).

* Offsets are committed (:meth:`PartitionLifecycle.commit`) only up to the lowest unanswered
  offset of each partition, so a crash re-answers what was open instead of losing it.
* Revoked partitions (:meth:`PartitionLifecycle.on_revoke`): their open requests may finish, up
  to ``serving.drain_timeout_s`` (none at shutdown: they already had that time), and are committed
  before the partitions are given up, so their next owner does not answer them again.
* Assigned partitions (:meth:`PartitionLifecycle.on_assign`): one this replica held before resumes
  at the later of the group's committed offset and what this replica answered (a broker may refuse
  the revoke's commit once the rebalance began; the local one does). The first assignment sets
  :attr:`PartitionLifecycle.assigned`.

The rebalance callbacks run on the request consumer's thread inside ``consume``/``close`` while
requests finish on the event loop; every use of the tracker holds one lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from odia_stream.serving import OffsetTracker
from serving.counters import ConsumerCounters

__all__ = ["PartitionLifecycle"]

log = logging.getLogger("odia.serving")


def _topic_partitions(offsets: dict[Hashable, int]) -> list[TopicPartition]:
    return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]  # type: ignore[misc]


class PartitionLifecycle:
    """Open offsets, commits and rebalances of the request consumer (see the module docstring)."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        drain_timeout_s: float,
        counters: ConsumerCounters,
        stopping: Callable[[], bool],
    ) -> None:
        self.tracker = OffsetTracker()
        self.counters = counters
        #: Set at the first partition assignment.
        self.assigned = threading.Event()
        self._consumer = consumer
        self._drain_timeout_s = drain_timeout_s
        self._stopping = stopping
        self._lock = threading.Lock()

    @staticmethod
    def on_commit(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The request consumer's ``on_commit`` callback: logs failed commits."""
        if err is not None:
            log.warning("offset commit failed: %s", err)

    def subscribe(self, topic: str) -> None:
        """Subscribe the request consumer to ``topic`` with this object's rebalance callbacks."""
        self._consumer.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)

    # -- requests ----------------------------------------------------------------------------------

    def started(self, key: Hashable, offset: int) -> int | None:
        """A request was read; returns its partition's assignment number (for :meth:`finished`), or
        ``None`` when this assignment read it before (see :meth:`OffsetTracker.started`)."""
        with self._lock:
            return self.tracker.started(key, offset)

    def finished(self, key: Hashable, offset: int, assignment: int) -> None:
        """A request's response was delivered (ignored if its partition was revoked meanwhile)."""
        with self._lock:
            self.tracker.finished(key, offset, assignment)

    def commit(self) -> None:
        """Commit what moved since the last commit (on the request consumer's thread)."""
        with self._lock:
            offsets = self.tracker.to_commit()
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=_topic_partitions(offsets), asynchronous=False)
        except KafkaException as exc:
            log.warning("commit failed (will retry): %s", exc)
            return
        with self._lock:
            self.tracker.mark_committed(offsets)
        self.counters.commits += 1

    # -- rebalances --------------------------------------------------------------------------------

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each partition this replica answered before at the later of the group's committed
        offset and what it answered itself (its last commit may have been refused in the rebalance)."""
        with self._lock:
            held_before = [
                (p.topic, p.partition)
                for p in partitions
                if self.tracker.resume_offset((p.topic, p.partition)) is not None
            ]
        if held_before:
            try:
                committed = consumer.committed([TopicPartition(t, p) for t, p in held_before], timeout=15)
            except KafkaException as exc:
                log.warning("could not read committed offsets (%s); reading from the group's offsets", exc)
            else:
                with self._lock:
                    starts = self.tracker.resume_after({(c.topic, c.partition): c.offset for c in committed})
                if starts:
                    for p in partitions:
                        if (p.topic, p.partition) in starts:
                            p.offset = starts[(p.topic, p.partition)]
                    log.info("resuming after answered requests: %s", starts)
                    consumer.assign(partitions)  # else the client assigns them as they came
        log.info("partitions assigned: %s", [(p.topic, p.partition) for p in partitions])
        self.assigned.set()

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Let the open requests of ``partitions`` finish (at most ``serving.drain_timeout_s``, none
        when stopping), commit past them and forget the partitions; they go on on the event loop
        meanwhile."""
        keys = [(p.topic, p.partition) for p in partitions]
        stopping = self._stopping()
        deadline = time.monotonic() + (0.0 if stopping else self._drain_timeout_s)
        with self._lock:
            self.counters.revocations += 1
            self.counters.open_at_revocation += self.tracker.pending(keys)
        while True:
            with self._lock:
                still_open = self.tracker.pending(keys)
            if not still_open or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if still_open and not stopping:
            log.warning(
                "%d request(s) still open on revoked partitions after %.0f s; "
                "the partitions' next owner answers them again",
                still_open,
                self._drain_timeout_s,
            )
        with self._lock:
            offsets = self.tracker.release(keys)
        if offsets:
            try:
                consumer.commit(offsets=_topic_partitions(offsets), asynchronous=False)
            except KafkaException as exc:
                log.warning("commit of revoked partitions failed (another owner may repeat answers): %s", exc)
        log.info("partitions revoked: %s", keys)
