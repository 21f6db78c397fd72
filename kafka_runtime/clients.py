"""Kafka clients built from settings: the one place that turns ``KafkaSettings`` into a client.

Every producer and consumer of the loop comes from :func:`make_producer` / :func:`make_consumer`,
so a connection setting added to ``KafkaSettings`` reaches every process at once.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from kafka_runtime.idle_pacing import IdlePacer
from kafka_runtime.security import confluent_security
from odia_stream.settings import KafkaSettings, OdiaSettings

__all__ = ["KafkaTarget", "TopicReader", "as_kafka", "client_config", "group_lag", "make_consumer", "partition_offsets", "make_producer", "member_id"]


KafkaTarget = KafkaSettings | str
"""Where to connect: the settings, or a bare bootstrap list for an open broker (tests, development)."""


def as_kafka(target: KafkaTarget) -> KafkaSettings:
    """``target`` as settings (a bootstrap string becomes settings with that address).

    >>> as_kafka("127.0.0.1:9999").bootstrap_servers
    '127.0.0.1:9999'
    """
    return KafkaSettings(bootstrap_servers=target) if isinstance(target, str) else target


def client_config(kafka: KafkaTarget) -> dict[str, Any]:
    """The properties every client of ``kafka`` shares: where the brokers are and how to reach them
    securely (:func:`kafka_runtime.security.confluent_security`). Holds secrets: never log it."""
    k = as_kafka(kafka)
    return {"bootstrap.servers": k.bootstrap_servers, **confluent_security(k)}


def make_producer(kafka: KafkaTarget, config: dict[str, Any] | None = None) -> Producer:
    """A confluent-kafka producer; ``config`` adds or overrides librdkafka properties."""
    return Producer({**client_config(kafka), **(config or {})})


def make_consumer(kafka: KafkaTarget, group_id: str, config: dict[str, Any] | None = None) -> Consumer:
    """A confluent-kafka consumer in ``group_id`` that commits by hand and starts from the earliest
    offset where the group has none; ``config`` adds or overrides librdkafka properties."""
    defaults = {"group.id": group_id, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    return Consumer({**client_config(kafka), **defaults, **(config or {})})


def member_id(settings: OdiaSettings, role: str) -> str:
    """The static group-membership id of this replica's ``role`` (``serving``, ``trainer``):
    ``<group_instance_id or app_id-hostname>-<role>``."""
    base = settings.kafka.group_instance_id or f"{settings.app_id}-{socket.gethostname()}"
    return f"{base}-{role}"


class TopicReader:
    """Reads every partition of a topic from its beginning, without a consumer group (nothing is
    committed), paced while idle. Used to watch a topic: responses, model updates."""

    def __init__(self, kafka: KafkaTarget, topic: str, *, paced: bool = True, timeout_s: float = 10.0) -> None:
        self.topic = topic
        self.consumer = make_consumer(kafka, f"reader-{uuid.uuid4().hex}", {"enable.partition.eof": False})
        parts = self.consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        self.pacer = IdlePacer(self.consumer, as_kafka(kafka).idle_backoff_ms if paced else 0.0)

    def poll(self, timeout: float = 0.5, max_messages: int = 500) -> list[bytes]:
        """The values that arrived within about ``timeout`` seconds (empty values skipped).

        Raises ``RuntimeError`` on a consumer error other than end-of-partition."""
        out: list[bytes] = []
        for m in self.pacer.consume(max_messages, timeout):
            err = m.error()
            if err is None:
                if m.value():
                    out.append(m.value())
            elif err.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"reading {m.topic()}: {err}")
        return out

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def partition_offsets(
    kafka: KafkaTarget, group_id: str, topic: str, timeout_s: float = 10.0
) -> dict[int, tuple[int, int, int | None]]:
    """Per partition of ``topic``: its low and high watermarks and ``group_id``'s committed offset
    (``None`` when the group committed nothing there)."""
    consumer = make_consumer(kafka, group_id)
    try:
        md = consumer.list_topics(topic, timeout=timeout_s)
        parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        out: dict[int, tuple[int, int, int | None]] = {}
        for tp in consumer.committed(parts, timeout=timeout_s):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout_s)
            out[tp.partition] = (low, high, tp.offset if tp.offset >= 0 else None)
        return out
    finally:
        consumer.close()


def group_lag(kafka: KafkaTarget, group_id: str, topic: str, timeout_s: float = 10.0) -> tuple[int, int]:
    """(committed messages, remaining lag) of ``group_id`` on ``topic``, summed over partitions."""
    done = lag = 0
    for low, high, committed in partition_offsets(kafka, group_id, topic, timeout_s).values():
        pos = committed if committed is not None else low
        done += max(0, pos - low)
        lag += max(0, high - pos)
    return done, lag
