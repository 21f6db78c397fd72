"""A rebalance under load answers no request twice: while the replica has requests open, another
member joins its group; the replica lets the open requests finish before it gives its partitions up,
and when it gets them back it resumes after what it answered, also where the broker refused the
final commit (the local broker rejects commits once a rebalance began)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter

from confluent_kafka import Consumer, Producer

from kafka_runtime.topics import ensure_topics
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.settings import OdiaSettings, TopicSpec
from schemas import ServeRequest
from tests.serving.support import RouterFixture, collect_responses, request_of, serving_context


def _publish(settings: OdiaSettings, requests: list[ServeRequest]) -> None:
    p = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for r in requests:
        p.produce(settings.topics.requests.name, key=r.request_id.encode(), value=r.model_dump_json())
    assert p.flush(15) == 0


def _join(bootstrap: str, group_id: str, topic: str) -> Consumer:
    """A member of ``group_id`` for another topic: joining makes the group rebalance, and the
    serving replica is given its own partitions back."""
    joined = threading.Event()
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "auto.offset.reset": "earliest"})
    member.subscribe([topic], on_assign=lambda _c, _p: joined.set())
    while not joined.is_set():
        member.poll(0.1)
    return member


async def test_a_rebalance_that_gives_the_partitions_back_answers_nothing_twice(
    settings: OdiaSettings, app_router: RouterFixture, hf_generator: HFGenerator
) -> None:
    s = settings.model_copy(
        update={
            "serving": settings.serving.model_copy(
                update={"commit_interval_s": 0.2, "shadow_share": 0.0, "metrics_port": None}
            )
        }
    )
    other = TopicSpec(name=f"other-{uuid.uuid4().hex[:6]}", partitions=1)
    ensure_topics(s.kafka, [*s.topics.all(), other])
    events = app_router.held_out
    first = [request_of(events[i % len(events)], "before") for i in range(24)]
    second = [request_of(events[i % len(events)], "after") for i in range(24)]
    want = {r.request_id for r in first + second}
    # No model update is published: every request goes to the simulated large model (median 6 s),
    # so the first requests are still open when the group rebalances.
    async with serving_context(s, hf_generator, app_router, large_median_ms=6000, large_p90_ms=9000) as (
        replica,
        _,
    ):
        _publish(s, first)
        while replica.counters.consumed < len(first):
            await asyncio.sleep(0.05)
        member = await asyncio.to_thread(_join, s.kafka.bootstrap_servers, replica.group_id, other.name)
        try:
            _publish(s, second)
            got = await asyncio.to_thread(collect_responses, s, [s.topics.responses.name], want, 240)
        finally:
            member.close()
    assert replica.counters.revocations >= 1 and replica.counters.open_at_revocation > 0, (
        "the replica gave its partitions up with requests open (what this test is about)"
    )
    counts = Counter(r.request_id for _, r in got)
    assert set(counts) == want and max(counts.values()) == 1, "every request answered exactly once"
    assert all(r.error is None and r.served_by == "large" for _, r in got)
    assert replica.counters.consumed == len(want), "no request was read twice"
