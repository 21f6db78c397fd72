"""Create the loop's topics with their partition counts and cleanup policies (Kafka admin API)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_runtime.clients import KafkaTarget, client_config
from odia_stream.settings import TopicSpec


@dataclass(frozen=True)
class TopicResult:
    """What happened to one topic: ``created``, ``exists`` or ``failed`` (with the error)."""

    name: str
    partitions: int
    compacted: bool
    outcome: str
    error: str | None = None


def ensure_topics(kafka: KafkaTarget, specs: list[TopicSpec], timeout_s: float = 15.0) -> list[TopicResult]:
    """Create each topic that does not exist yet; existing topics are reported, not changed.

    Compacted topics get ``cleanup.policy=compact``. Raises ``RuntimeError`` when an existing
    topic has fewer partitions than its spec (Faust would refuse to start on it).
    """
    admin = AdminClient(client_config(kafka))
    existing = admin.list_topics(timeout=timeout_s).topics
    results: list[TopicResult] = []
    to_create: list[NewTopic] = []
    for spec in specs:
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            if have < spec.partitions:
                raise RuntimeError(f"topic {spec.name} has {have} partitions, settings ask for {spec.partitions}")
            results.append(TopicResult(spec.name, have, spec.compacted, "exists"))
            continue
        config = {"cleanup.policy": "compact"} if spec.compacted else {}
        to_create.append(NewTopic(spec.name, spec.partitions, spec.replication_factor, config=config))
    if to_create:
        futures = admin.create_topics(to_create, request_timeout=timeout_s)
        by_name = {s.name: s for s in specs}
        for name, future in futures.items():
            spec = by_name[name]
            try:
                future.result()
                results.append(TopicResult(name, spec.partitions, spec.compacted, "created"))
            except KafkaException as exc:
                err = exc.args[0]
                if getattr(err, "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                    results.append(TopicResult(name, spec.partitions, spec.compacted, "exists"))
                else:
                    results.append(TopicResult(name, spec.partitions, spec.compacted, "failed", str(err)))
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(results, key=lambda r: order[r.name])


def delete_topics(kafka: KafkaTarget, names: list[str], timeout_s: float = 15.0) -> None:
    """Delete topics (used by tests to clean up); missing topics are ignored."""
    admin = AdminClient(client_config(kafka))
    existing = admin.list_topics(timeout=timeout_s).topics
    names = [n for n in names if n in existing]
    if not names:
        return
    for future in admin.delete_topics(names, request_timeout=timeout_s).values():
        future.result()
