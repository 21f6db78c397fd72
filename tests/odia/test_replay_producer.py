"""ReplayProducer and ``odia replay`` against the session's real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import typer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from kafka_runtime.local_broker import free_port
from odia.cli import replay_cmd
from odia.replay_producer import ReplayProducer, TokenBucket
from odia_stream.datasets import load_dataset
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent

pytestmark = pytest.mark.slow


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"test.replay.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result()
    return name


def _consume(bootstrap: str, topic: str, partitions: int, expected: int, timeout_s: float = 30.0) -> list:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, -2) for p in range(partitions)])  # -2: from the beginning
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out


@pytest.fixture(scope="module")
def events(datasets_dir: Path) -> list[FCLogEvent]:
    """200 events over several tool sets: multi-turn HammerBench and SNIPS."""
    hb = list(load_dataset(datasets_dir / "hammerbench" / "en" / "HammerBench_mQsA.json", limit=150))
    snips = list(load_dataset(datasets_dir / "snips" / "validate_PlayMusic.json", limit=50))
    return hb + snips


def test_publish_and_consume_back(kafka_bootstrap: str, events: list[FCLogEvent]) -> None:
    topic = _topic(kafka_bootstrap, 3)
    with ReplayProducer(kafka_bootstrap, topic) as producer:
        stats = producer.publish(events, progress=False)
    assert (stats.sent, stats.failed, stats.produced) == (200, 0, 200) and stats.ok
    assert stats.seconds > 0 and stats.events_per_s > 0

    messages = _consume(kafka_bootstrap, topic, 3, 200)
    assert len(messages) == 200
    got = {}
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    order_in_partition: dict[int, list[str]] = defaultdict(list)
    for msg in messages:
        event = FCLogEvent.model_validate_json(msg.value())
        assert msg.key() == event.app.encode()
        got[event.event_id] = event
        partitions_of_key[msg.key()].add(msg.partition())
        order_in_partition[msg.partition()].append(event.event_id)
    assert got == {e.event_id: e for e in events}
    assert all(len(p) == 1 for p in partitions_of_key.values())  # one app -> one partition
    assert set(partitions_of_key) == {e.app.encode() for e in events}
    position = {e.event_id: i for i, e in enumerate(events)}
    for ids in order_in_partition.values():
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)  # send order kept


def test_publish_raw_round_trip(kafka_bootstrap: str) -> None:
    """Arbitrary bytes arrive byte for byte (read with aiokafka, as the Faust agents do: the
    local noida-db broker hides empty and null values from librdkafka consumers)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    topic = _topic(kafka_bootstrap, 1)
    values: list[bytes | None] = [
        b"{not json",
        b"\xff\xfe\x00\x01",
        b'{"event_id": "x"}',
        b"",
        None,
        b"x" * 50_000,
    ]
    keys: list[bytes | str | None] = [b"k0", "k1", None, b"k3", b"k4", "k5"]
    with ReplayProducer(kafka_bootstrap, topic, compression="none") as producer:
        stats = producer.publish_raw(values, keys=keys)
    assert (stats.sent, stats.failed) == (6, 0)

    async def read_back() -> list[tuple[bytes | None, bytes | None]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = AioTopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            out: list[tuple[bytes | None, bytes | None]] = []
            deadline = time.monotonic() + 20
            while len(out) < len(values) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                out.extend((m.key, m.value) for msgs in batch.values() for m in msgs)
            return out
        finally:
            await consumer.stop()

    got = asyncio.run(read_back())
    expected_keys = [k.encode() if isinstance(k, str) else k for k in keys]
    assert got == list(zip(expected_keys, values, strict=True))
    with ReplayProducer(kafka_bootstrap, topic) as producer, pytest.raises(ValueError):
        producer.publish_raw([b"a", b"b"], keys=[b"only one"])


def test_delivery_failures_are_counted() -> None:
    port = free_port()  # nothing listens there
    with ReplayProducer(f"127.0.0.1:{port}", "nowhere", delivery_timeout_s=1.0) as producer:
        stats = producer.publish_raw([b"a", b"b", b"c"])
    assert (stats.sent, stats.failed, stats.produced) == (0, 3, 3) and not stats.ok
    assert stats.errors and "timed out" in stats.errors[0].lower()


def test_a_broker_gone_mid_stream_is_reported_not_raised(tmp_path: Path) -> None:
    """The broker stops while a replay is running: every message ends up counted as sent or
    failed (with the reason), and the producer closes cleanly (issue 17: it used to die with an
    interpreter error in ``flush``)."""
    import threading

    from kafka_runtime.local_broker import LocalBroker
    from kafka_runtime.topics import ensure_topics
    from odia_stream.settings import TopicSpec

    port = free_port()
    broker = LocalBroker(tmp_path / "broker", port=port)
    broker.up()
    try:
        ensure_topics(broker.address, [TopicSpec(name="gone", partitions=1)])
        stopper = threading.Timer(1.5, broker.down)
        stopper.start()
        with ReplayProducer(broker.address, "gone", delivery_timeout_s=2.0) as producer:
            stats = producer.publish_raw([b"x" * 100] * 3000, rate=1000)
        stopper.join()
    finally:
        broker.down()
    assert stats.produced == 3000 and stats.sent + stats.failed == stats.produced
    assert 0 < stats.sent < 3000 and not stats.ok
    assert any("timed out" in e.lower() or "down" in e.lower() for e in stats.errors)


def test_token_bucket_and_rate_limit(kafka_bootstrap: str, events: list[FCLogEvent]) -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, burst=2, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.1, 0.2]
    now[0] = 1.0
    assert bucket.reserve() == 0.0  # refilled (capped at the burst)
    with pytest.raises(ValueError):
        TokenBucket(0)

    topic = _topic(kafka_bootstrap, 1)
    with ReplayProducer(kafka_bootstrap, topic) as producer:
        stats = producer.publish(events[:60], rate=100.0)
    assert stats.sent == 60
    assert 0.45 <= stats.seconds < 3.0  # 60 events at 100/s with a 10-token burst: >= 0.5 s
    assert stats.events_per_s <= 135


def test_replay_command(
    settings: OdiaSettings, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(replay_cmd, "get_settings", lambda: settings)
    app = typer.Typer()
    app.command()(replay_cmd.replay)
    app.command("noop")(lambda: None)  # two commands, so `replay` is a subcommand as in `odia`
    runner = CliRunner()
    source = datasets_dir / "snips" / "validate_GetWeather.json"
    result = runner.invoke(
        app, ["replay", str(source), "--limit", "40", "--zipf", "120", "--seed", "5", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    assert "│ sent │ 120 │" in summary and "│ failed │ 0 │" in summary

    spec = settings.topics.fc_logs
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    assert len(admin.list_topics(timeout=10).topics[spec.name].partitions) == spec.partitions  # created first
    messages = _consume(settings.kafka.bootstrap_servers, spec.name, spec.partitions, 120)
    ids = [json.loads(m.value())["event_id"] for m in messages]
    assert len(ids) == len(set(ids)) == 120
    assert len({i.rsplit("#", 1)[0] for i in ids}) < 40  # popular utterances recur

    bad = runner.invoke(app, ["replay", str(tmp_path), "--no-progress"])
    assert bad.exit_code == 2 and "unknown dataset layout" in " ".join(bad.output.split())
