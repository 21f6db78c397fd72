"""Replay ``FCLogEvent`` streams (or arbitrary bytes) into the ``fc-logs`` topic.

An idempotent confluent-kafka producer (``acks=all``; lz4 or no compression). Each event is
keyed by its app, so the records of one app land in one partition, in order (the learner's
state per app is then a deterministic function of that sequence); the value is the event's JSON.
Every delivery report is counted: failures (including messages still undelivered when the
final flush times out) are reported in :class:`ReplayStats`, never dropped silently. The
Kafka message timestamp is left to the producer (now): dataset timestamps lie in the past
and would make a broker with time-based retention delete the records at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message
from tqdm import tqdm

from kafka_runtime.clients import KafkaTarget, make_producer
from schemas import FCLogEvent

__all__ = ["ReplayProducer", "ReplayStats", "TokenBucket", "event_key", "event_value"]

log = logging.getLogger(__name__)

Compression = Literal["lz4", "none"]
_KEEP_ERRORS = 20


def event_key(event: FCLogEvent) -> bytes:
    """The message key of an event: its app, so one app's logs stay in order in one partition
    (the learner's state for an app is then a deterministic function of that sequence)."""
    return event.app.encode("utf-8")


def event_value(event: FCLogEvent) -> bytes:
    """The message value of an event: its wire JSON."""
    return event.model_dump_json().encode("utf-8")


@dataclass(frozen=True)
class ReplayStats:
    """Outcome of one publish call.

    ``sent``: messages the broker acknowledged; ``failed``: messages that were not (delivery
    errors, produce errors, undelivered at the final flush); ``produced``: messages attempted
    (``sent + failed == produced`` once flushed); ``seconds``: wall time including the final flush.
    """

    sent: int
    failed: int
    produced: int
    seconds: float
    errors: tuple[str, ...] = ()

    @property
    def events_per_s(self) -> float:
        """Acknowledged messages per second."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when every message was acknowledged."""
        return self.failed == 0 and self.sent == self.produced


class TokenBucket:
    """Token bucket: ``rate`` tokens per second, at most ``burst`` banked."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 10.0)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def reserve(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` now (going into debt if needed); return seconds to wait before using them."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= tokens
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass
class _Tally:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, reason: str, count: int = 1) -> None:
        self.failed += count
        if len(self.errors) < _KEEP_ERRORS:
            self.errors.append(reason)
            log.error("replay: %s", reason)


class ReplayProducer:
    """Publish events (or raw bytes) to one topic; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        kafka: KafkaTarget,
        topic: str,
        *,
        compression: Compression = "lz4",
        delivery_timeout_s: float = 30.0,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if compression not in ("lz4", "none"):
            raise ValueError("compression must be 'lz4' or 'none'")
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        conf: dict[str, Any] = {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": compression,
            "linger.ms": 5,
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "error_cb": self._on_error,
            # librdkafka's own log lines go through Python logging, not straight to stderr.
            "logger": logging.getLogger("odia.replay_producer.librdkafka"),
        }
        conf.update(config or {})
        self._producer = make_producer(kafka, conf)

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        log.warning("replay producer: %s", err)

    def __enter__(self) -> ReplayProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush what is still queued (reports are counted by the publish call that sent them)."""
        self._producer.flush(self.delivery_timeout_s + 10)

    def publish(
        self, events: Iterable[FCLogEvent], *, rate: float | None = None, progress: bool = False
    ) -> ReplayStats:
        """Send events (key = tools fingerprint, value = JSON), at most ``rate`` per second; flush."""
        total = len(events) if hasattr(events, "__len__") else None  # type: ignore[arg-type]
        pairs = ((event_key(e), event_value(e)) for e in events)
        return self._send(pairs, total=total, rate=rate, progress=progress)

    def publish_raw(
        self,
        values: Iterable[bytes | None],
        keys: Iterable[bytes | str | None] | None = None,
        *,
        rate: float | None = None,
        progress: bool = False,
    ) -> ReplayStats:
        """Send arbitrary values (``None`` = null value) with optional keys (same length); flush."""
        total = len(values) if hasattr(values, "__len__") else None  # type: ignore[arg-type]
        key_iter: Iterable[bytes | str | None] = keys if keys is not None else _nones()
        strict = keys is not None
        pairs = (
            (k.encode("utf-8") if isinstance(k, str) else k, v)
            for k, v in zip(key_iter, values, strict=strict)
        )
        return self._send(pairs, total=total, rate=rate, progress=progress)

    def _send(
        self,
        pairs: Iterable[tuple[bytes | None, bytes | None]],
        *,
        total: int | None,
        rate: float | None,
        progress: bool,
    ) -> ReplayStats:
        tally = _Tally()
        bucket = TokenBucket(rate) if rate else None
        producer = self._producer

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                tally.sent += 1
            else:
                tally.fail(f"delivery to {msg.topic()} failed: {err}")

        produced = 0
        started = time.monotonic()
        bar = tqdm(total=total, unit="msg", desc=f"replay → {self.topic}", disable=not progress, leave=False)
        try:
            for key, value in pairs:
                if bucket is not None:
                    wait = bucket.reserve()
                    deadline = time.monotonic() + wait
                    while (left := deadline - time.monotonic()) > 0:
                        producer.poll(min(left, 0.05))
                while True:
                    try:
                        producer.produce(self.topic, value=value, key=key, on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.05)  # local queue full: serve reports, then retry
                    except KafkaException as exc:
                        tally.fail(f"produce failed: {exc}")
                        break
                produced += 1
                producer.poll(0)
                bar.update(1)
                if progress and tally.failed:
                    bar.set_postfix(failed=tally.failed, refresh=False)
            remaining = producer.flush(self.delivery_timeout_s + 10)
            if remaining:
                tally.fail(f"{remaining} message(s) still undelivered after the final flush", count=remaining)
        finally:
            bar.close()
        seconds = time.monotonic() - started
        stats = ReplayStats(
            sent=tally.sent,
            failed=tally.failed,
            produced=produced,
            seconds=seconds,
            errors=tuple(tally.errors),
        )
        if stats.failed:
            log.warning("replay to %s: %d of %d messages failed", self.topic, stats.failed, produced)
        return stats


def _nones() -> Iterator[None]:
    while True:
        yield None
