"""Delivering responses: each :class:`~schemas.ServeResponse` is produced, keyed by its request id,
to the request's ``reply_topic`` or else the responses topic, and acknowledged by the broker.

* A reply topic that cannot be delivered to: the response goes to the responses topic instead,
  its ``error`` noting why (``counters.redirected``).
* Any other failure is retried with a doubling delay (0.2 s up to 10 s; ``counters.delivery_retries``)
  until it is delivered; when stopping, it is given up once the delay passed 5 s
  (:meth:`ResponseDelivery.deliver` returns ``False``: the request stays uncommitted).

One idempotent producer per replica; its delivery reports are served by a thread of its own
between :meth:`ResponseDelivery.start` and :meth:`ResponseDelivery.close`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from kafka_runtime.clients import make_producer
from kafka_runtime.publishing import deliver_model
from odia_stream.settings import OdiaSettings
from schemas import ServeResponse
from serving.counters import ConsumerCounters

__all__ = ["ResponseDelivery"]

log = logging.getLogger("odia.serving")


class ResponseDelivery:
    """Produces responses to their topic and waits for the broker (see the module docstring)."""

    def __init__(
        self, settings: OdiaSettings, counters: ConsumerCounters, stopping: Callable[[], bool]
    ) -> None:
        self.responses_topic = settings.topics.responses.name
        self.counters = counters
        self._stopping = stopping
        self._producer = make_producer(settings.kafka, {"enable.idempotence": True, "linger.ms": 2})
        self._done = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="serving-producer", daemon=True)

    def start(self) -> None:
        """Start serving delivery reports."""
        self._poller.start()

    async def deliver(self, response: ServeResponse, reply_topic: str | None) -> bool:
        """Deliver ``response`` (falling back to the responses topic); ``False`` if it could not be delivered."""
        default = self.responses_topic
        topic = reply_topic or default
        err = await deliver_model(self._producer, topic, response, response.request_id)
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
            err = await deliver_model(self._producer, topic, response, response.request_id)
        delay = 0.2
        while err is not None:
            self.counters.delivery_retries += 1
            if self._stopping() and delay > 5:
                log.error(
                    "giving up delivering %s at shutdown (%s); it stays uncommitted", response.request_id, err
                )
                return False
            log.warning("delivery of %s failed (%s); retrying in %.1f s", response.request_id, err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            err = await deliver_model(self._producer, topic, response, response.request_id)
        return True

    async def flush(self, timeout_s: float) -> None:
        """Wait (off the event loop) until queued responses are acknowledged, at most ``timeout_s``."""
        await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving delivery reports (after :meth:`flush`)."""
        self._done.set()
        if self._poller.is_alive():
            self._poller.join(timeout_s)

    def _poll(self) -> None:
        while not self._done.is_set():
            self._producer.poll(0.05)
