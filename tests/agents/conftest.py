"""Fixtures for Kafka adapter tests."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition


def _read_topic(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of ``topic`` from the beginning up to its current end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        todo = {p for p, end in ends.items() if end > 0}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out = []
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.key(), msg.value()))
            if msg.offset() >= ends[msg.partition()] - 1:
                todo.discard(msg.partition())
        assert not todo, f"could not read {topic} to its end"
        return out
    finally:
        c.close()



@pytest.fixture(scope="session")
def read_topic() -> Callable[..., list[tuple[bytes | None, bytes | None]]]:
    """``read_topic(bootstrap, topic)``: every (key, value) from the beginning to the current end."""
    return _read_topic
