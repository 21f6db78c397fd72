"""Idle pacing of Kafka consumers, for brokers that answer an empty fetch at once.

A Kafka broker holds an empty fetch for ``fetch.wait.max.ms`` (long polling), so an idle
consumer costs nothing. The local development broker (noida-db 0.2.3) answers it at once, and
librdkafka's fetcher then loops: measured here, one idle consumer kept ~40% of a core busy in
the client and as much in the broker (``fetch.wait.max.ms``, ``fetch.min.bytes`` and the
backoff settings change nothing). On a 2-core machine a few idle consumers starve the trainer.

:class:`IdlePacer` pauses the consumer's partitions while nothing arrives (librdkafka does not
fetch paused partitions) and resumes them for a short look every backoff, the backoff doubling
up to ``max_ms`` while idle and reset by the first message. The first message after an idle
spell waits at most ``max_ms``. ``max_ms = 0`` turns pacing off (use that with Apache Kafka:
``ODIA_KAFKA__IDLE_BACKOFF_MS=0``).

A look can be shorter than the round trip a resumed partition's first fetch takes (a loaded
machine): pausing again would then drop what that fetch brings, every time, and the data would
never arrive. So an empty look is not taken for idleness when the broker holds more than the
consumer has read: each partition's high watermark (asked of the broker) is compared with the
consumer's position there or, before it has read anything, with the group's committed offset, else
the low watermark (the project's consumers start at the earliest offset). While data is waiting the
partitions stay resumed until it arrives. (That costs a
watermark request per partition per idle look; pacing is for the local broker, where it is cheap.)

Faust's aiokafka consumer is paced by :func:`pace_aiokafka_fetches`: after a fetch that brought
nothing, the fetch to that broker waits the same doubling backoff before the next one goes out
(a client-side stand-in for the broker's long poll).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition

__all__ = ["IdlePacer", "pace_aiokafka_fetches"]

log = logging.getLogger(__name__)

#: How long a look at resumed partitions lasts (a local fetch round trip is usually under this).
LOOK_S = 0.02
FIRST_BACKOFF_S = 0.01
#: Seconds to wait for the broker's high watermarks of a partition.
WATERMARK_TIMEOUT_S = 2.0


class IdlePacer:
    """``consume()`` with the partitions paused between looks while the topic is idle."""

    def __init__(self, consumer: Consumer, max_ms: float, stop: threading.Event | None = None) -> None:
        self.consumer = consumer
        self.max_s = max(0.0, max_ms / 1000.0)
        self.backoff_s = FIRST_BACKOFF_S
        self.paused = False
        self._stop = stop
        #: Times an empty look found data waiting on the broker (the partitions stayed resumed).
        self.waited_for_data = 0

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        """Up to ``num_messages`` messages within about ``timeout`` seconds (errors included, as
        ``Consumer.consume`` returns them)."""
        if self.max_s <= 0:
            return self.consumer.consume(num_messages=num_messages, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            self._resume()
            msgs = self.consumer.consume(num_messages=num_messages, timeout=min(LOOK_S, timeout))
            if msgs:
                self.backoff_s = FIRST_BACKOFF_S
                return msgs
            left = deadline - time.monotonic()
            stopping = self._stop is not None and self._stop.is_set()
            if left > 0 and not stopping and self._data_waiting():
                self.waited_for_data += 1
                msgs = self.consumer.consume(num_messages=num_messages, timeout=left)
                if msgs:
                    self.backoff_s = FIRST_BACKOFF_S
                return msgs  # still resumed: the next call looks again without pausing
            self.pause()
            if left <= 0 or stopping:
                return []
            time.sleep(min(self.backoff_s, left))
            self.backoff_s = min(self.backoff_s * 2, self.max_s)

    def pause(self) -> None:
        """Pause the assigned partitions now (e.g. for a long job between polls); the next
        :meth:`consume` resumes them."""
        parts = self.consumer.assignment()
        if parts:
            try:
                self.consumer.pause(parts)
                self.paused = True
            except KafkaException:  # a rebalance in between: the next look resumes what is assigned
                self.paused = False

    def _marks(self, part: TopicPartition) -> tuple[int, int] | None:
        """The partition's low and high watermarks per the broker (``None`` when it cannot say now)."""
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(part.topic, part.partition), timeout=WATERMARK_TIMEOUT_S
            )
        except KafkaException:
            return None
        return int(low), int(high)

    def _data_waiting(self) -> bool:
        """Whether an assigned partition holds messages this consumer has not read (see the module
        docstring)."""
        try:
            positions = self.consumer.position(self.consumer.assignment())
            unread = [p for p in positions if p.offset < 0]
            committed = {
                (c.topic, c.partition): c.offset
                for c in (self.consumer.committed(unread, timeout=WATERMARK_TIMEOUT_S) if unread else [])
            }
        except KafkaException:
            return False
        for p in positions:
            marks = self._marks(p)
            if marks is None:
                continue
            low, high = marks
            if p.offset >= 0:
                read_up_to = p.offset
            elif committed.get((p.topic, p.partition), OFFSET_INVALID) >= 0:
                read_up_to = committed[(p.topic, p.partition)]
            else:
                read_up_to = low
            if high > read_up_to:
                return True
        return False

    def _resume(self) -> None:
        if not self.paused:
            return
        parts = self.consumer.assignment()
        if parts:
            try:
                self.consumer.resume(parts)
            except KafkaException:
                pass
        self.paused = False


def pace_aiokafka_fetches(max_ms: float) -> bool:
    """Make aiokafka's fetcher back off (doubling, up to ``max_ms``) after fetches that brought no
    records, instead of sending the next at once. Process-wide; returns whether it is in place
    (``False`` for ``max_ms = 0``, or an aiokafka without the fetch method this wraps)."""
    if max_ms <= 0:
        return False
    from aiokafka.consumer.fetcher import Fetcher

    original: Callable[..., Awaitable[bool]] | None = getattr(Fetcher, "_proc_fetch_request", None)
    if original is None or getattr(original, "__odia_paced__", False):
        if original is None:
            log.warning("aiokafka has no Fetcher._proc_fetch_request: idle fetches are not paced")
        return original is not None
    max_s = max_ms / 1000.0

    @functools.wraps(original)
    async def paced(self: Any, *args: Any, **kwargs: Any) -> bool:
        got_records = await original(self, *args, **kwargs)
        backoff = getattr(self, "_odia_idle_backoff_s", FIRST_BACKOFF_S)
        if got_records:
            self._odia_idle_backoff_s = FIRST_BACKOFF_S
        else:
            self._odia_idle_backoff_s = min(backoff * 2, max_s)
            try:
                await asyncio.sleep(backoff)
            except asyncio.CancelledError:  # close() or a lost assignment: like the original, return quietly
                return got_records
        return got_records

    paced.__odia_paced__ = True  # type: ignore[attr-defined]
    Fetcher._proc_fetch_request = paced  # type: ignore[method-assign]
    return True
