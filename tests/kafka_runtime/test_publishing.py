"""Producing wire models, and reading them back, against the real local broker."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from kafka_runtime.clients import TopicReader, group_lag, make_consumer, make_producer
from kafka_runtime.local_broker import free_port
from kafka_runtime.publishing import PublishError, deliver_model, produce_model, publish_model
from kafka_runtime.topics import ensure_topics
from odia_stream.settings import OdiaSettings, TopicSpec
from schemas import RetrainTrigger


def _trigger(n: int) -> RetrainTrigger:
    return RetrainTrigger(
        trigger_id=f"t-{n}", app="shop", reason="manual", new_examples=n, total_examples=10 * n,
        simple_clusters=1, store_version=n, embedder_id="e5-small",
    )


def _topic(settings: OdiaSettings, partitions: int = 1) -> str:
    name = f"publishing-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka, [TopicSpec(name=name, partitions=partitions)])
    return name


def _read(settings: OdiaSettings, topic: str, n: int, timeout_s: float = 20.0) -> list[bytes]:
    got: list[bytes] = []
    with TopicReader(settings.kafka, topic) as reader:
        deadline = time.monotonic() + timeout_s
        while len(got) < n and time.monotonic() < deadline:
            got.extend(reader.poll(0.5))
    return got


def test_published_models_come_back_as_the_same_models(settings: OdiaSettings) -> None:
    topic = _topic(settings, partitions=2)
    sent = [_trigger(n) for n in (1, 2, 3)]
    publish_model(settings.kafka, topic, sent[0], key="shop")
    producer = make_producer(settings.kafka)
    for trigger in sent[1:]:
        produce_model(producer, topic, trigger, key=b"shop")
    assert producer.flush(15) == 0
    got = sorted((RetrainTrigger.model_validate_json(v) for v in _read(settings, topic, 3)), key=lambda t: t.trigger_id)
    assert got == sent


def test_deliver_model_reports_the_acknowledgement_to_asyncio(settings: OdiaSettings) -> None:
    topic = _topic(settings)
    producer = make_producer(settings.kafka)

    done = threading.Event()

    def serve_delivery_reports() -> None:  # as serving's producer thread does
        while not done.is_set():
            producer.poll(0.05)

    poller = threading.Thread(target=serve_delivery_reports)
    poller.start()
    try:
        err = asyncio.run(asyncio.wait_for(deliver_model(producer, topic, _trigger(4), "shop"), 30))
    finally:
        done.set()
        poller.join()
    assert err is None
    assert [RetrainTrigger.model_validate_json(v).trigger_id for v in _read(settings, topic, 1)] == ["t-4"]


def test_publishing_to_an_unreachable_broker_fails_with_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(PublishError, match="RetrainTrigger to nowhere not acknowledged"):
        publish_model(f"127.0.0.1:{port}", "nowhere", _trigger(5), key="shop", timeout_s=2.0)
    assert time.monotonic() - started < 10


def test_group_lag_counts_committed_and_remaining_messages(settings: OdiaSettings) -> None:
    topic = _topic(settings)
    producer = make_producer(settings.kafka)
    for n in range(5):
        produce_model(producer, topic, _trigger(n), key="shop")
    assert producer.flush(15) == 0
    group = f"lag-{uuid.uuid4().hex[:6]}"
    assert group_lag(settings.kafka, group, topic) == (0, 5)
    consumer = make_consumer(settings.kafka, group)
    consumer.subscribe([topic])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen.append(msg)
    consumer.commit(message=seen[2], asynchronous=False)
    consumer.close()
    assert group_lag(settings.kafka, group, topic) == (3, 2)
