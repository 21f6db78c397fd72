"""Following the model-updates topic: every update of this generator reaches the hot swapper.

A consumer in no group (its group id only satisfies the client; nothing is subscribed nor
committed) is assigned every partition of the model-updates topic from the beginning, since every
replica must see every update. :meth:`ModelUpdateFollower.catch_up` reads the log to the end it
had at start and applies its latest update of this generator (serving takes no request before it
returns); :meth:`ModelUpdateFollower.follow` then applies the latest update of each new batch.
Which update a batch applies is :func:`~odia_stream.serving.choose_update`; applying is
:meth:`~odia_stream.serving.HotSwapper.apply`, whose outcomes are appended to ``counters.swaps``.
The consumer is used on one thread of its own only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from kafka_runtime.clients import make_consumer
from kafka_runtime.idle_pacing import IdlePacer
from odia_stream.serving import ServingRuntime, choose_update
from odia_stream.settings import OdiaSettings
from serving.counters import ConsumerCounters
from serving.messages import with_data

__all__ = ["ModelUpdateFollower"]

log = logging.getLogger("odia.serving")


class ModelUpdateFollower:
    """Reads the model-updates topic and applies this generator's latest updates (see the module docstring)."""

    def __init__(self, settings: OdiaSettings, runtime: ServingRuntime, counters: ConsumerCounters) -> None:
        self.runtime = runtime
        self.counters = counters
        self.topic = settings.topics.model_updates.name
        self.generator = settings.generator.name
        k = settings.kafka
        self._consumer = make_consumer(k, f"{settings.app_id}-serving-updates-{uuid.uuid4().hex[:8]}")
        self._pacer = IdlePacer(self._consumer, k.idle_backoff_ms)
        self._io = ThreadPoolExecutor(1, thread_name_prefix="serving-updates")

    async def catch_up(self, timeout_s: float = 60.0) -> None:
        """Read the topic to its end as of now and apply the latest update of this generator in it."""
        loop = asyncio.get_running_loop()
        ends = await loop.run_in_executor(self._io, self._assign)
        backlog = await loop.run_in_executor(self._io, self._read_to, ends, timeout_s)
        await self._apply(backlog)

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply the latest update of each new batch until ``stop`` is set (after :meth:`catch_up`)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            msgs = await loop.run_in_executor(self._io, self._read, 0.5)
            if msgs:
                await self._apply(msgs)

    async def close(self) -> None:
        """Close the consumer (once :meth:`follow` returned)."""
        await asyncio.get_running_loop().run_in_executor(self._io, self._consumer.close)
        self._io.shutdown(wait=True)

    def _assign(self) -> dict[int, int]:
        """Assign every partition from the beginning; returns their end offsets now."""
        md = self._consumer.list_topics(self.topic, timeout=15)
        meta = md.topics.get(self.topic)
        if meta is None or meta.error is not None:
            raise RuntimeError(
                f"model-updates topic {self.topic} is not available: {meta.error if meta else 'missing'}"
            )
        parts = sorted(meta.partitions)
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
        return {
            p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=15)[1]
            for p in parts
        }

    def _read(self, timeout_s: float) -> list[Message]:
        return with_data(self._pacer.consume(100, timeout_s))

    def _read_to(self, ends: dict[int, int], timeout_s: float) -> list[Message]:
        """Every update up to ``ends`` (the log as it was at start)."""
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        todo = {p for p, end in ends.items() if end > 0}
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self.topic} to its end within {timeout_s:.0f} s")
            out.extend(self._read(0.5))
            for p in list(todo):
                position = self._consumer.position([TopicPartition(self.topic, p)])[0].offset
                if position >= ends[p]:
                    todo.discard(p)
        return out

    async def _apply(self, msgs: list[Message]) -> None:
        """Apply the update ``msgs`` (log order) call for; count and log what they held."""
        choice = choose_update([m.value() for m in msgs], self.generator)
        self.counters.updates_seen += choice.seen
        for index, why in choice.invalid:
            m = msgs[index]
            self.counters.updates_invalid += 1
            self.runtime.metrics.swaps.labels("invalid").inc()
            log.error(
                "model update at %s:%d:%d is not a ModelUpdate: %s", m.topic(), m.partition(), m.offset(), why
            )
        if choice.update is not None:
            self.counters.swaps.append(await self.runtime.swapper.apply(choice.update))
