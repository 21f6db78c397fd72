"""The serving consumer: requests topic → :class:`~odia_stream.serving.ServeEngine` → responses topic,
following the model-updates topic with :class:`~odia_stream.serving.HotSwapper`.

:class:`ServingConsumer` runs the request loop and composes the parts that own the other jobs:

* Requests (here): one consumer group ``<app_id>-serving`` with a static ``group.instance.id`` (a
  restarted replica takes its partitions back at once). Messages are answered concurrently, at most
  ``serving.max_in_flight`` at a time (consuming pauses while that many are open), each by
  :meth:`~odia_stream.serving.ServeEngine.answer_raw`: every message gets exactly one response,
  a message that cannot be read an error response (see :mod:`odia_stream.serving.requests`).
  Offsets are committed every ``serving.commit_interval_s``.
* Offsets and rebalances: :class:`~serving.partitions.PartitionLifecycle` (commit only up to the
  lowest unanswered offset; revoked partitions drain and commit first; returning ones resume after
  what this replica answered).
* Responses: :class:`~serving.delivery.ResponseDelivery` (on the request's ``reply_topic``, else
  the responses topic).
* Model updates: :class:`~serving.model_updates.ModelUpdateFollower`. Its catch-up (the latest
  update of this generator applied) finishes before the request consumer subscribes, so
  :attr:`ServingConsumer.ready` (set at the first partition assignment) means both.
* Metrics: Prometheus text on ``serving.metrics_port`` (:func:`start_metrics_server`).

Stopping (:meth:`ServingConsumer.stop`): open requests get ``serving.drain_timeout_s`` to finish
(then they are cancelled and stay uncommitted), responses are flushed, offsets committed, and the
consumers closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Message

from kafka_runtime.clients import make_consumer, member_id
from kafka_runtime.idle_pacing import IdlePacer
from odia_stream.http_auth import serve_metrics
from odia_stream.serving import OffsetTracker, ServingRuntime
from odia_stream.settings import OdiaSettings
from serving.counters import ConsumerCounters
from serving.delivery import ResponseDelivery
from serving.messages import with_data
from serving.model_updates import ModelUpdateFollower
from serving.partitions import PartitionLifecycle

__all__ = ["ConsumerCounters", "ServingConsumer", "start_metrics_server"]

log = logging.getLogger("odia.serving")


def start_metrics_server(runtime: ServingRuntime) -> Any | None:
    """Serve ``runtime``'s metrics on ``serving.metrics_host:metrics_port`` (``None`` port: no
    server), behind ``serving.metrics_token`` (required off loopback: ``ValueError`` without one)."""
    s = runtime.settings.serving
    if s.metrics_port is None:
        return None
    server = serve_metrics(runtime.metrics.registry, s.metrics_host, s.metrics_port, s.metrics_token,
                           "ODIA_SERVING__METRICS_TOKEN")
    log.info("metrics on http://%s:%d/metrics", s.metrics_host, server.server_port)
    return server


class ServingConsumer:
    """Runs the serving loop for one replica (see the module docstring)."""

    def __init__(self, settings: OdiaSettings, runtime: ServingRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.counters = ConsumerCounters()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        k = settings.kafka
        self.group_id = f"{settings.app_id}-serving"
        self._requests = make_consumer(
            k,
            self.group_id,
            {"group.instance.id": member_id(settings, "serving"), "on_commit": PartitionLifecycle.on_commit},
        )
        self._requests_pacer = IdlePacer(self._requests, k.idle_backoff_ms)
        self._requests_io = ThreadPoolExecutor(1, thread_name_prefix="serving-requests")
        self.partitions = PartitionLifecycle(
            self._requests,
            drain_timeout_s=settings.serving.drain_timeout_s,
            counters=self.counters,
            stopping=self._stopping,
        )
        self.delivery = ResponseDelivery(settings, self.counters, self._stopping)
        self.updates = ModelUpdateFollower(settings, runtime, self.counters)
        #: Set once the latest model update was applied and the request consumer got its first
        #: partition assignment (so a request published from then on is read without a group join).
        self.ready = self.partitions.assigned

    @property
    def tracker(self) -> OffsetTracker:
        """The request offsets' bookkeeping (:attr:`partitions` owns it; read it for diagnostics only)."""
        return self.partitions.tracker

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to finish the open requests and return (thread-safe)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    # -- requests --------------------------------------------------------------------------------

    async def _handle(self, msg: Message, assignment: int) -> None:
        answer = await self.runtime.engine.answer_raw(
            msg.value(), msg.key(), msg.topic(), msg.partition(), msg.offset()
        )
        if answer.malformed:
            self.counters.malformed += 1
        if await self.delivery.deliver(answer.response, answer.reply_topic):
            self.counters.answered += 1
            self.partitions.finished((msg.topic(), msg.partition()), msg.offset(), assignment)

    def _consume(self, n: int) -> list[Message]:
        return with_data(self._requests_pacer.consume(n, 0.2))

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
                    assignment = self.partitions.started((msg.topic(), msg.partition()), msg.offset())
                    if assignment is None:
                        self.counters.redelivered += 1
                        log.info("offset %d of %s[%d] delivered again: answered once", msg.offset(), msg.topic(), msg.partition())
                        continue
                    self.counters.consumed += 1
                    task = loop.create_task(
                        self._handle(msg, assignment), name=f"request-{msg.partition()}-{msg.offset()}"
                    )
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            if time.monotonic() >= next_commit:
                await loop.run_in_executor(self._requests_io, self.partitions.commit)
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
        follower: asyncio.Task[None] | None = None
        self.delivery.start()
        try:
            await self.updates.catch_up()
            self.partitions.subscribe(self.settings.topics.requests.name)
            follower = self._loop.create_task(self.updates.follow(self._stop), name="model-updates")
            log.info(
                "serving %s (generator %s, router %s)",
                self.settings.topics.requests.name,
                self.runtime.versions.current.adapter_version,
                self.runtime.versions.current.router_version,
            )
            await self._serve_requests()
        finally:
            self._stop.set()
            try:
                await self._shutdown(follower)
            finally:
                self.delivery.close()
        return self.counters

    async def _shutdown(self, follower: asyncio.Task[None] | None) -> None:
        loop = asyncio.get_running_loop()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.serving.drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "%d request(s) unanswered at shutdown; their offsets stay uncommitted", len(pending)
                )
        if follower is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
        await self.delivery.flush(10)
        await loop.run_in_executor(self._requests_io, self.partitions.commit)
        await loop.run_in_executor(self._requests_io, self._requests.close)
        await self.updates.close()
        self._requests_io.shutdown(wait=True)
