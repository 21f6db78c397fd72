"""The serving consumer: requests topic → :class:`~odia_stream.serving.ServeEngine` → responses topic,
following the model-updates topic with :class:`~odia_stream.serving.HotSwapper`.

* Requests: one consumer group ``<app_id>-serving`` with a static ``group.instance.id`` (a restarted
  replica takes its partitions back at once). Messages are answered concurrently, at most
  ``serving.max_in_flight`` at a time (consuming pauses while that many are open). Every message gets
  exactly one response, keyed by request id, on the request's ``reply_topic`` or the responses topic;
  a message that cannot be read gets an error response (see :mod:`odia_stream.serving.requests`).
  Offsets are committed only up to the lowest unanswered offset of each partition, so a crash
  re-answers what was open instead of losing it. In a rebalance, the open requests of revoked
  partitions finish (up to ``serving.drain_timeout_s``) and are committed before the partitions are
  given up, so their next owner does not answer them again. A partition that comes back resumes at
  the later of the group's committed offset and what this replica answered (a broker may refuse
  the commit once the rebalance began; the local one does).
* Model updates: a second consumer, in no group, is assigned every partition of the model-updates
  topic from the beginning (every replica must see every update). On start it reads to the end and
  applies the latest update of this generator before the first request is taken; afterwards each
  batch of new updates applies its latest one. Updates for another generator are skipped; updates
  for another base model are refused by the backend (``ignored``).
* Metrics: Prometheus text on ``serving.metrics_port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from agents.idle_pacing import IdlePacer
from odia_stream.serving import OffsetTracker, ServingRuntime, SwapOutcome, error_response, parse_request
from odia_stream.settings import OdiaSettings
from schemas import ModelUpdate, ServeResponse

__all__ = ["ConsumerCounters", "ServingConsumer", "start_metrics_server"]

log = logging.getLogger("odia.serving")


@dataclass
class ConsumerCounters:
    """What the consumer did since it started."""

    consumed: int = 0
    answered: int = 0
    malformed: int = 0
    redirected: int = 0
    delivery_retries: int = 0
    commits: int = 0
    #: Times partitions were taken from this replica (rebalances, and closing), and the requests
    #: open on them then (let finish before the partitions were given up, up to
    #: ``serving.drain_timeout_s``; at shutdown they already had that time).
    revocations: int = 0
    open_at_revocation: int = 0
    updates_seen: int = 0
    updates_invalid: int = 0
    swaps: list[SwapOutcome] = field(default_factory=list)


def start_metrics_server(runtime: ServingRuntime) -> Any | None:
    """Serve ``runtime``'s metrics on ``serving.metrics_host:metrics_port`` (``None`` port: no server)."""
    s = runtime.settings.serving
    if s.metrics_port is None:
        return None
    from prometheus_client import start_http_server

    server, _ = start_http_server(s.metrics_port, addr=s.metrics_host, registry=runtime.metrics.registry)
    log.info("metrics on http://%s:%d/metrics", s.metrics_host, server.server_port)
    return server


class ServingConsumer:
    """Runs the serving loop for one replica (see the module docstring)."""

    def __init__(self, settings: OdiaSettings, runtime: ServingRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.counters = ConsumerCounters()
        self.tracker = OffsetTracker()
        self._tracker_lock = threading.Lock()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Set once the latest model update was applied and the request consumer got its first
        #: partition assignment (so a request published from then on is read without a group join).
        self.ready = threading.Event()
        k = settings.kafka
        instance = k.group_instance_id or f"{settings.app_id}-{socket.gethostname()}"
        self.group_id = f"{settings.app_id}-serving"
        self._requests = Consumer(
            {
                "bootstrap.servers": k.bootstrap_servers,
                "group.id": self.group_id,
                "group.instance.id": f"{instance}-serving",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "on_commit": self._on_commit_error,
            }
        )
        self._updates = Consumer(
            {
                "bootstrap.servers": k.bootstrap_servers,
                # Assigned, never subscribed nor committed: the id only satisfies the client.
                "group.id": f"{settings.app_id}-serving-updates-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self._producer = Producer(
            {"bootstrap.servers": k.bootstrap_servers, "enable.idempotence": True, "linger.ms": 2}
        )
        self._requests_pacer = IdlePacer(self._requests, k.idle_backoff_ms)
        self._updates_pacer = IdlePacer(self._updates, k.idle_backoff_ms)
        self._producer_done = threading.Event()
        self._requests_io = ThreadPoolExecutor(1, thread_name_prefix="serving-requests")
        self._updates_io = ThreadPoolExecutor(1, thread_name_prefix="serving-updates")

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to finish the open requests and return (thread-safe)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def _poll_producer(self) -> None:
        """Serve delivery callbacks until the consumer closes (runs on its own thread)."""
        while not self._producer_done.is_set():
            self._producer.poll(0.05)

    @staticmethod
    def _on_commit_error(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("offset commit failed: %s", err)

    # -- model updates ---------------------------------------------------------------------------

    def _assign_updates(self) -> dict[int, int]:
        """Assign every model-updates partition from the beginning; returns their end offsets now."""
        topic = self.settings.topics.model_updates.name
        md = self._updates.list_topics(topic, timeout=15)
        meta = md.topics.get(topic)
        if meta is None or meta.error is not None:
            raise RuntimeError(
                f"model-updates topic {topic} is not available: {meta.error if meta else 'missing'}"
            )
        parts = sorted(meta.partitions)
        self._updates.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        return {
            p: self._updates.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in parts
        }

    def _read_updates(self, timeout_s: float) -> list[Message]:
        return [m for m in self._updates_pacer.consume(100, timeout_s) if self._ok(m)]

    def _catch_up_updates(self, ends: dict[int, int], timeout_s: float = 60.0) -> list[Message]:
        """Every model update up to ``ends`` (the log as it was at start)."""
        out: list[Message] = []
        topic = self.settings.topics.model_updates.name
        deadline = time.monotonic() + timeout_s
        todo = {p for p, end in ends.items() if end > 0}
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
            out.extend(self._read_updates(0.5))
            for p in list(todo):
                position = self._updates.position([TopicPartition(topic, p)])[0].offset
                if position >= ends[p]:
                    todo.discard(p)
        return out

    def _latest_update(self, msgs: list[Message]) -> ModelUpdate | None:
        """The last valid update of this generator in ``msgs`` (log order)."""
        latest: ModelUpdate | None = None
        for m in msgs:
            value = m.value()
            if value is None:  # a tombstone on the compacted topic
                continue
            self.counters.updates_seen += 1
            try:
                update = ModelUpdate.model_validate_json(value)
            except ValidationError as exc:
                self.counters.updates_invalid += 1
                self.runtime.metrics.swaps.labels("invalid").inc()
                log.error(
                    "model update at %s:%d:%d is not a ModelUpdate: %s",
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    exc.errors()[0]["msg"],
                )
                continue
            if update.generator == self.settings.generator.name:
                latest = update
        return latest

    async def _apply(self, update: ModelUpdate | None) -> None:
        if update is None:
            return
        outcome = await self.runtime.swapper.apply(update)
        self.counters.swaps.append(outcome)

    async def _follow_updates(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop is not None
        while not self._stop.is_set():
            msgs = await loop.run_in_executor(self._updates_io, self._read_updates, 0.5)
            if msgs:
                await self._apply(self._latest_update(msgs))

    # -- requests --------------------------------------------------------------------------------

    @staticmethod
    def _ok(msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err)
        return False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each partition this replica answered before at the later of the group's committed
        offset and what it answered itself (its last commit may have been refused in the rebalance)."""
        with self._tracker_lock:
            local = {
                (p.topic, p.partition): o
                for p in partitions
                if (o := self.tracker.resume_offset((p.topic, p.partition))) is not None
            }
        if local:
            try:
                committed = consumer.committed([TopicPartition(t, p) for t, p in local], timeout=15)
            except KafkaException as exc:
                log.warning("could not read committed offsets (%s); reading from the group's offsets", exc)
            else:
                starts = {
                    (c.topic, c.partition): local[(c.topic, c.partition)]
                    for c in committed
                    if c.offset < local[(c.topic, c.partition)]  # none committed (< 0) or behind
                }
                for p in partitions:
                    if (p.topic, p.partition) in starts:
                        p.offset = starts[(p.topic, p.partition)]
                if starts:
                    with self._tracker_lock:
                        for key, offset in starts.items():
                            self.tracker.resumed(key, offset)
                    log.info("resuming after answered requests: %s", starts)
                    consumer.assign(partitions)  # else the client assigns them as they came
        log.info("partitions assigned: %s", [(p.topic, p.partition) for p in partitions])
        self.ready.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before giving partitions up, let their open requests finish (at most
        ``serving.drain_timeout_s``) and commit past them, so whoever takes the partitions next
        (this replica included) does not answer them again. Runs on the request-consumer thread
        inside ``consume``; the open requests go on on the event loop meanwhile."""
        keys = [(p.topic, p.partition) for p in partitions]
        # At shutdown the open requests already had their drain time (and were cancelled after it).
        stopping = self._stop is not None and self._stop.is_set()
        deadline = time.monotonic() + (0.0 if stopping else self.settings.serving.drain_timeout_s)
        with self._tracker_lock:
            self.counters.revocations += 1
            self.counters.open_at_revocation += self.tracker.pending(keys)
        while True:
            with self._tracker_lock:
                still_open = self.tracker.pending(keys)
            if not still_open or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if still_open and not stopping:
            log.warning(
                "%d request(s) still open on revoked partitions after %.0f s; "
                "the partitions' next owner answers them again",
                still_open,
                self.settings.serving.drain_timeout_s,
            )
        with self._tracker_lock:
            offsets = {k: o for k, o in self.tracker.to_commit().items() if k in keys}
            self.tracker.forget(keys)
        if offsets:
            try:
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
                )
            except KafkaException as exc:
                log.warning("commit of revoked partitions failed (another owner may repeat answers): %s", exc)
        log.info("partitions revoked: %s", keys)

    def _commit(self) -> None:
        with self._tracker_lock:
            offsets = self.tracker.to_commit()
        if not offsets:
            return
        try:
            self._requests.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],  # type: ignore[misc]
                asynchronous=False,
            )
        except KafkaException as exc:
            log.warning("commit failed (will retry): %s", exc)
            return
        with self._tracker_lock:
            self.tracker.mark_committed(offsets)
        self.counters.commits += 1

    async def _deliver(self, topic: str, response: ServeResponse) -> KafkaError | None:
        """Produce ``response`` to ``topic`` and wait for the broker's acknowledgement."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def ack(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(err))

        while True:
            try:
                self._producer.produce(
                    topic,
                    key=response.request_id.encode("utf-8"),
                    value=response.model_dump_json(),
                    on_delivery=ack,
                )
                break
            except BufferError:
                await asyncio.sleep(0.05)
        return await done

    async def _respond(self, response: ServeResponse, reply_topic: str | None) -> bool:
        """Deliver ``response`` (falling back to the responses topic); ``False`` if it could not be delivered."""
        default = self.settings.topics.responses.name
        topic = reply_topic or default
        err = await self._deliver(topic, response)
        if err is not None and topic != default:
            log.warning(
                "could not answer %s on reply topic %s (%s); using %s",
                response.request_id,
                topic,
                err,
                default,
            )
            self.counters.redirected += 1
            note = f"could not deliver to reply_topic {topic!r}: {err.str()}"
            response = response.model_copy(
                update={"error": f"{response.error}; {note}" if response.error else note}
            )
            topic = default
            err = await self._deliver(topic, response)
        delay = 0.2
        assert self._stop is not None
        while err is not None:
            self.counters.delivery_retries += 1
            if self._stop.is_set() and delay > 5:
                log.error(
                    "giving up delivering %s at shutdown (%s); it stays uncommitted", response.request_id, err
                )
                return False
            log.warning("delivery of %s failed (%s); retrying in %.1f s", response.request_id, err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            err = await self._deliver(topic, response)
        return True

    async def _handle(self, msg: Message, assignment: int) -> None:
        key: Hashable = (msg.topic(), msg.partition())
        incoming = parse_request(msg.value(), msg.key(), msg.topic(), msg.partition(), msg.offset())
        if incoming.request is None:
            self.counters.malformed += 1
            self.runtime.metrics.errors.labels("malformed").inc()
            response = error_response(
                incoming.request_id, incoming.error or "malformed request", route_reason="malformed_request"
            )
            self.runtime.metrics.observe(response)
        else:
            response = await self.runtime.engine.answer(incoming.request)
        delivered = await self._respond(response, incoming.reply_topic)
        if delivered:
            self.counters.answered += 1
            with self._tracker_lock:
                self.tracker.finished(key, msg.offset(), assignment)

    def _consume(self, n: int) -> list[Message]:
        return [m for m in self._requests_pacer.consume(n, 0.2) if self._ok(m)]

    async def _serve_requests(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._stop is not None
        max_in_flight = self.settings.serving.max_in_flight
        next_commit = time.monotonic() + self.settings.serving.commit_interval_s
        while not self._stop.is_set():
            free = max_in_flight - len(self._tasks)
            if free <= 0:
                await asyncio.wait(set(self._tasks), timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
            else:
                for msg in await loop.run_in_executor(self._requests_io, self._consume, min(free, 100)):
                    self.counters.consumed += 1
                    with self._tracker_lock:
                        assignment = self.tracker.started((msg.topic(), msg.partition()), msg.offset())
                    task = loop.create_task(
                        self._handle(msg, assignment), name=f"request-{msg.partition()}-{msg.offset()}"
                    )
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            if time.monotonic() >= next_commit:
                await loop.run_in_executor(self._requests_io, self._commit)
                next_commit = time.monotonic() + self.settings.serving.commit_interval_s

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("request task failed: %r", task.exception())

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> ConsumerCounters:
        """Serve until :meth:`stop`; then finish open requests, commit and close."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        loop = self._loop
        followers: asyncio.Task[None] | None = None
        poller = threading.Thread(target=self._poll_producer, name="serving-producer", daemon=True)
        poller.start()
        try:
            ends = await loop.run_in_executor(self._updates_io, self._assign_updates)
            backlog = await loop.run_in_executor(self._updates_io, self._catch_up_updates, ends)
            await self._apply(self._latest_update(backlog))
            self._requests.subscribe(
                [self.settings.topics.requests.name], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            followers = loop.create_task(self._follow_updates(), name="model-updates")
            log.info(
                "serving %s (generator %s, router %s)",
                self.settings.topics.requests.name,
                self.runtime.versions.current.generator_version,
                self.runtime.versions.current.router_version,
            )
            await self._serve_requests()
        finally:
            self._stop.set()
            try:
                await self._shutdown(followers)
            finally:
                self._producer_done.set()
                poller.join(5)
        return self.counters

    async def _shutdown(self, followers: asyncio.Task[None] | None) -> None:
        loop = asyncio.get_running_loop()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.serving.drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "%d request(s) unanswered at shutdown; their offsets stay uncommitted", len(pending)
                )
        if followers is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await followers
        await loop.run_in_executor(None, self._producer.flush, 10)
        await loop.run_in_executor(self._requests_io, self._commit)
        await loop.run_in_executor(self._requests_io, self._requests.close)
        await loop.run_in_executor(self._updates_io, self._updates.close)
        self._requests_io.shutdown(wait=True)
        self._updates_io.shutdown(wait=True)
