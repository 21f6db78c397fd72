"""Topic administration against the real local broker."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource

from kafka_runtime.topics import delete_topics, ensure_topics
from odia_stream.settings import OdiaSettings


def test_ensure_topics_creates_every_topic_with_its_partitions(settings: OdiaSettings) -> None:
    specs = settings.topics.all()
    results = ensure_topics(settings.kafka, specs)
    assert [r.outcome for r in results] == ["created"] * len(specs)
    md = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}).list_topics(timeout=10)
    for spec in specs:
        assert len(md.topics[spec.name].partitions) == spec.partitions

    again = ensure_topics(settings.kafka, specs)
    assert [r.outcome for r in again] == ["exists"] * len(specs)
    delete_topics(settings.kafka, [s.name for s in specs])


def test_compacted_topics_ask_for_compaction(settings: OdiaSettings) -> None:
    spec = settings.topics.cluster_state
    ensure_topics(settings.kafka, [spec])
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, spec.name)])
    config = next(iter(futures.values())).result()
    assert config["cleanup.policy"].value == "compact"


def test_local_broker_running_stops_only_what_it_started(tmp_path) -> None:  # noqa: ANN001
    from kafka_runtime.local_broker import LocalBroker, free_port

    port = free_port()
    broker = LocalBroker(tmp_path / "b", port=port)
    with broker.running() as started:
        assert started and broker.status().running
        with broker.running() as again:  # nested: already running, not ours to stop
            assert not again
        assert broker.status().running
    assert not broker.status().running
