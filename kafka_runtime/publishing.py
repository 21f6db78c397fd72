"""Producing a wire model (a pydantic model of ``schemas``) to a topic.

The value is the model's JSON (UTF-8), the key a string or bytes. Three ways, one encoding:

- :func:`produce_model`: queue it (fire and forget, or with a delivery callback);
- :func:`publish_model`: queue it and wait for the broker's acknowledgement (commands, trainer);
- :func:`deliver_model`: the same from asyncio code, without blocking the event loop (serving).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import BaseModel

from kafka_runtime.clients import KafkaTarget, make_producer

__all__ = ["PublishError", "deliver_model", "encode_key", "produce_model", "publish_model", "send_with_retries"]

DeliveryCallback = Callable[[KafkaError | None, Message], None]
T = TypeVar("T")
log = logging.getLogger("odia.kafka")


class PublishError(RuntimeError):
    """A model was not acknowledged by the broker (not delivered, or not in time)."""


def encode_key(key: str | bytes | None) -> bytes | None:
    """A message key as bytes (strings as UTF-8).

    >>> encode_key("app-1"), encode_key(b"k"), encode_key(None)
    (b'app-1', b'k', None)
    """
    return key.encode("utf-8") if isinstance(key, str) else key


def produce_model(
    producer: Producer,
    topic: str,
    model: BaseModel,
    key: str | bytes | None,
    on_delivery: DeliveryCallback | None = None,
    *,
    queue_wait_s: float = 0.05,
) -> None:
    """Queue ``model`` on ``producer`` for ``topic``; while the local queue is full, serve delivery
    reports and try again (never drops the message)."""
    value = model.model_dump_json().encode("utf-8")
    kwargs = {"key": encode_key(key), "value": value}
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError:
            producer.poll(queue_wait_s)


def publish_model(
    target: KafkaTarget | Producer,
    topic: str,
    model: BaseModel,
    key: str | bytes | None,
    timeout_s: float = 15.0,
) -> None:
    """Produce ``model`` and wait until the broker acknowledges it.

    ``target`` is a producer to use, or the settings to make a short-lived idempotent one from
    (``acks=all``). Raises :class:`PublishError` when it is not delivered within ``timeout_s``.
    """
    own = not isinstance(target, Producer)
    producer = make_producer(target, {"enable.idempotence": True, "acks": "all"}) if own else target
    outcome: list[KafkaError | None] = []
    what = f"{type(model).__name__} to {topic}"
    try:
        produce_model(producer, topic, model, key, lambda err, _msg: outcome.append(err))
    except KafkaException as exc:
        raise PublishError(f"{what} could not be queued: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    while not outcome and time.monotonic() < deadline:
        producer.poll(min(0.1, max(0.0, deadline - time.monotonic())))
    if not outcome:
        if own:  # nothing may arrive later from a producer the caller never sees
            producer.purge()
            producer.flush(0)
        raise PublishError(f"{what} not acknowledged by the broker in {timeout_s:.0f} s (is it up?)")
    if outcome[0] is not None:
        raise PublishError(f"{what} was not delivered: {outcome[0]}")


async def deliver_model(producer: Producer, topic: str, model: BaseModel, key: str | bytes | None) -> KafkaError | None:
    """Produce ``model`` from asyncio code and wait for its delivery report: ``None`` when the
    broker acknowledged it, else the error. ``producer.poll`` must be served by another thread."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[KafkaError | None] = loop.create_future()

    def ack(err: KafkaError | None, _msg: Message) -> None:
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(err))

    value = model.model_dump_json().encode("utf-8")
    while True:
        try:
            producer.produce(topic, key=encode_key(key), value=value, on_delivery=ack)
            break
        except BufferError:
            await asyncio.sleep(0.05)
    return await done


async def send_with_retries(
    send: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = 5,
    first_delay_s: float = 0.5,
    max_delay_s: float = 8.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``send()`` until it succeeds, ``attempts`` times at most, waiting ``first_delay_s``,
    then twice as long each time (at most ``max_delay_s``) between tries; the last error is
    raised. ``what`` names the message in the log."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    delay = first_delay_s
    for attempt in range(1, attempts):
        try:
            return await send()
        except Exception as exc:
            log.warning("%s: send failed (%r), attempt %d of %d; retrying in %.1f s", what, exc, attempt, attempts, delay)
            await sleep(delay)
            delay = min(max_delay_s, delay * 2)
    try:
        return await send()
    except Exception as exc:
        log.error("%s: not sent after %d attempts: %r", what, attempts, exc)
        raise


async def send_until_sent(
    send: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = 5,
    blocked_retry_s: float = 30.0,
    on_blocked: Callable[[str | None], None] = lambda _reason: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """:func:`send_with_retries`, and while that still fails, report the block (logged as an error,
    and ``on_blocked(reason)``) and start again every ``blocked_retry_s``. The caller waits here, so
    a consumer that acknowledges in order commits nothing after the message while it is unsent;
    ``on_blocked(None)`` once it is sent after a block."""
    blocked = False
    while True:
        try:
            result = await send_with_retries(send, what, attempts=attempts, sleep=sleep)
        except Exception as exc:
            reason = f"{what} not sent: {exc!r}"
            log.error("%s; reading waits (nothing after it is committed); trying again in %.0f s", reason, blocked_retry_s)
            blocked = True
            on_blocked(reason)
            await sleep(blocked_retry_s)
            continue
        if blocked:
            log.warning("%s: sent after a block; reading goes on", what)
            on_blocked(None)
        return result
