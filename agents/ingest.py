"""The ingest agent: fc-logs → validate (DLQ) → offset-aligned micro-batches → the learner →
cluster-state and retrain-trigger topics (and, every few seconds, the learner's totals and audit
as an ``IngestSummary`` on the cluster-state topic). All decisions live in ``odia_stream``.

Consumption and processing overlap: full micro-batches go through a small bounded queue to
one processing task, so the next batch is read and validated while the learner embeds and
clusters the current one (the queue bound is the back-pressure).

Offsets are acknowledged manually, in offset order, only after a batch is applied and its
outputs are flushed to the broker, so a crash never loses an input and a replay never counts
one twice (the learner skips applied offsets and seen event ids).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust

from kafka_runtime.publishing import send_until_sent
from odia_stream.clustering import OffsetAlignedBatcher, OnlineClusterLearner, SourcedItem
from odia_stream.clustering.audit import READ, Rejected
from odia_stream.clustering.learner import BatchOutcome
from odia_stream.dead_letter_store import open_dead_letter_store
from odia_stream.settings import OdiaSettings
from odia_stream.validation import EventParser, InvalidEvent
from schemas import INGEST_SUMMARY_KEY, ClusterState, DeadLetter, FCLogEvent, RetrainTrigger

log = logging.getLogger("odia.agents.ingest")


@dataclass
class IngestCounters:
    """What the agent has seen since it started."""

    #: Records read from the topic (valid or not), and those dead-lettered.
    received: int = 0
    dead_lettered: int = 0
    #: The learner's batch counts summed over batches (:attr:`BatchOutcome.counts`), plus ``batches``.
    learned: Counter[str] = field(default_factory=Counter)
    #: Records published, per kind: ``states``, ``triggers``, ``summaries``.
    published: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Pending:
    event: Any  # faust.Event (acked after its batch)
    parsed: FCLogEvent | None
    #: Why the value was rejected (dead-lettered), when it was.
    rejected: Rejected | None = None


class IngestService:
    """Wires the learner into a Faust app: one agent on fc-logs and an idle-flush timer."""

    def __init__(self, app: faust.App, settings: OdiaSettings, learner: OnlineClusterLearner) -> None:
        self.app = app
        self.settings = settings
        self.learner = learner
        t = settings.topics
        self.fc_logs = app.topic(t.fc_logs.name, partitions=t.fc_logs.partitions, allow_empty=True)
        self.dlq = app.topic(t.dead_letters.name, partitions=t.dead_letters.partitions)
        self.states = app.topic(t.cluster_state.name, partitions=t.cluster_state.partitions)
        self.triggers = app.topic(t.retrain_triggers.name, partitions=t.retrain_triggers.partitions)
        self.batcher: OffsetAlignedBatcher[_Pending] = OffsetAlignedBatcher(settings.clustering.batch_size)
        self.counters = IngestCounters()
        #: Where rejected values too long for a dead-letter record are kept whole.
        self.dead_letter_store = open_dead_letter_store(settings)
        #: Validates each distinct offered-tool list once (they repeat on every event of an app).
        self.parser = EventParser()
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odia-learner")
        #: Full batches waiting for the learner (bounded: reading pauses while two are queued).
        self._queue: asyncio.Queue[list[SourcedItem[_Pending]]] = asyncio.Queue(maxsize=2)
        #: Why reading waits, while a dead letter cannot be sent (``None``: it does not).
        self.blocked: str | None = None
        app.agent(self.fc_logs, name="odia-ingest", concurrency=1)(self._consume)
        app.timer(interval=max(0.2, settings.clustering.batch_timeout_s / 2), on_leader=False)(self._flush_idle)
        app.task(self._republish_unpublished)
        app.task(self._process_queued)
        app.timer(interval=settings.ingest.summary_interval_s, on_leader=False)(self._publish_summary)
        app.on_before_shutdown.connect(self._final_summary)
        #: What the last published summary covered (store version, records read), to skip repeats.
        self._summary_covers: tuple[int, int] | None = None

    # -- outputs -------------------------------------------------------------------------------
    async def _dead_letter(
        self, message: Any, raw: bytes | None, err: InvalidEvent, sha256: str | None = None
    ) -> None:
        letter = DeadLetter.of_record(
            err.code, err.reason, topic=message.topic, partition=message.partition, offset=message.offset,
            key=message.key, value=raw, event_id=err.event_id,
            max_inline_bytes=self.settings.dead_letters.max_inline_bytes, store=self.dead_letter_store.put,
            sha256=sha256,
        )
        value = letter.model_dump_json().encode()
        where = f"dead letter of {message.topic}/{message.partition}@{message.offset}"
        await send_until_sent(
            lambda: self.dlq.send(key=message.key, value=value), where,
            attempts=self.settings.dead_letters.send_attempts,
            blocked_retry_s=self.settings.dead_letters.blocked_retry_s, on_blocked=self._set_blocked,
        )
        self.counters.dead_lettered += 1

    def _set_blocked(self, reason: str | None) -> None:
        self.blocked = reason

    async def _publish(self, states: list[ClusterState], triggers: list[RetrainTrigger]) -> None:
        for state in states:
            await self.states.send(key=state.cluster_id.encode(), value=state.model_dump_json().encode())
        for trig in triggers:
            await self.triggers.send(key=trig.app.encode(), value=trig.model_dump_json().encode())
        await self.app.producer.flush()
        self.counters.published.update(states=len(states), triggers=len(triggers))

    async def _publish_summary(self) -> None:
        """Publish the learner's totals and audit on the cluster-state topic (under
        ``INGEST_SUMMARY_KEY``) when they changed; a failure is logged and retried next tick."""
        covers = (self.learner.store_version, sum(a.counts[READ] for a in self.learner.audit()))
        if covers == self._summary_covers:
            return
        try:
            async with self._lock:
                summary = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.learner.ingest_summary
                )
            await self.states.send(key=INGEST_SUMMARY_KEY.encode(), value=summary.model_dump_json().encode())
        except Exception:  # the summary is a report: it must never stop the worker
            log.exception("could not publish the ingest summary; trying again in %.0f s",
                          self.settings.ingest.summary_interval_s)
            return
        self._summary_covers = covers
        self.counters.published["summaries"] += 1
        if not summary.adds_up:
            log.warning("the ingest audit does not add up: %s", summary.totals)

    async def _final_summary(self, sender: Any, **_: Any) -> None:
        """On shutdown (the consumer stopped, the producer not yet flushed): the last summary."""
        try:
            await asyncio.wait_for(self._publish_summary(), timeout=10)
        except TimeoutError:
            log.warning("no final ingest summary: the learner was still busy after 10 s")

    async def _republish_unpublished(self) -> None:
        """On start: publish what a crash left committed but unpublished."""
        async with self._lock:
            states, triggers = self.learner.unpublished()
            if states or triggers:
                log.info("republishing %d states and %d triggers left by a previous run", len(states), len(triggers))
                await self._publish(states, triggers)
            self.learner.mark_published(self.learner.store_version)

    # -- the stream ----------------------------------------------------------------------------
    async def _consume(self, stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            msg = event.message
            self.counters.received += 1
            parsed: FCLogEvent | None = None
            rejected: Rejected | None = None
            try:
                parsed = self.parser.parse(event.value)
            except InvalidEvent as err:
                rejected = Rejected.of(err.code, event.value)
                if not await self._was_dead_lettered(msg, rejected):
                    await self._dead_letter(msg, event.value, err, rejected.sha256)
            item = SourcedItem(msg.topic, msg.partition, msg.offset, _Pending(event, parsed, rejected))
            for batch in self.batcher.add(item):
                await self._queue.put(batch)

    async def _was_dead_lettered(self, message: Any, rejected: Rejected) -> bool:
        """Whether this rejected value was dead-lettered at this position before (a re-read after a
        restart); the state file is read on the learner's thread, only for positions read before."""
        if not self.learner.is_applied(message.topic, message.partition, message.offset):
            return False
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.learner.was_dead_lettered,
            message.topic, message.partition, message.offset, rejected.sha256,
        )

    async def _flush_idle(self) -> None:
        if not self._queue.empty():
            return  # the learner is busy; partial batches wait until it catches up
        for batch in self.batcher.flush(older_than_s=self.settings.clustering.batch_timeout_s):
            await self._queue.put(batch)

    async def _process_queued(self) -> None:
        """The one processing task: batches in arrival order, so acks stay in offset order."""
        while True:
            batch = await self._queue.get()
            try:
                await self._process(batch)
            finally:
                self._queue.task_done()

    async def _record_failed_batch(self, batch: list[SourcedItem[_Pending]]) -> None:
        """Record a batch the learner failed on as dead-lettered (its valid events as
        ``processing_error``), so the audit accounts for its offsets; if even that fails, the
        audit shows them as unaccounted and the log says why."""
        records = [
            SourcedItem(i.topic, i.partition, i.offset,
                        i.payload.rejected or Rejected.of("processing_error", i.payload.event.value))
            for i in batch
        ]
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.learner.process, [], records)
        except Exception:
            log.exception("could not record the failed batch of %d in the audit", len(batch))

    async def _process(self, batch: list[SourcedItem[_Pending]]) -> None:
        async with self._lock:
            valid = [SourcedItem(i.topic, i.partition, i.offset, i.payload.parsed) for i in batch if i.payload.parsed]
            rejected = [
                SourcedItem(i.topic, i.partition, i.offset, i.payload.rejected)
                for i in batch if i.payload.rejected is not None
            ]
            loop = asyncio.get_running_loop()
            try:
                outcome: BatchOutcome = await loop.run_in_executor(
                    self._executor, self.learner.process, valid, rejected  # type: ignore[arg-type]
                )
            except Exception as exc:  # a bug or a broken model must not take the worker down
                log.exception("batch of %d failed; dead-lettering it", len(batch))
                self.counters.errors.append(repr(exc))
                err_reason = f"processing failed: {exc!r}"
                for i in batch:
                    if i.payload.parsed is not None:
                        await self._dead_letter(
                            i.payload.event.message, i.payload.event.value,
                            InvalidEvent("processing_error", err_reason, i.payload.parsed.event_id),
                        )
                await self.app.producer.flush()
                await self._record_failed_batch(batch)
            else:
                await self._publish(outcome.changed, outcome.triggers)
                await loop.run_in_executor(self._executor, self.learner.mark_published, outcome.store_version)
                self.counters.learned.update(outcome.counts, batches=1)
                n = outcome.counts
                log.info(
                    "batch: %d in, %d accepted, %d dup, %d replayed, %d dead-lettered, %d new queries, "
                    "%d new clusters, %d merged, %d states, %d triggers",
                    n["received"], n["accepted"], n["duplicates"], n["replayed"], n["dead_lettered"],
                    n["new_queries"], n["new_clusters"], n["merged_clusters"], len(outcome.changed),
                    len(outcome.triggers),
                )
            for i in batch:
                i.payload.event.ack()
