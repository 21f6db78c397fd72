"""The serving consumer end to end on the real broker: HF backend (and llama.cpp for the hot swap),
tiny trained adapters, the real router, the replay large model. One response per request (malformed
ones included), offsets committed, metrics served; a hot swap under a steady stream loses nothing and
every response names the version that produced it."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Producer

from kafka_runtime.topics import ensure_topics
from odia.runner import group_lag
from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.generation.base_model import smollm2_gguf_path
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.generation.llamacpp_generator import LlamaCppGenerator
from odia_stream.generation.protocol import SmallGenerator
from odia_stream.serving import CoalescingGenerator
from odia_stream.settings import OdiaSettings, TopicSpec
from serving.consumer import start_metrics_server
from tests.serving.support import (
    SMALL_ALWAYS,
    RouterFixture,
    collect_responses,
    publish_update,
    request_of,
    serving_context,
    steady_pool,
    steady_stream,
)


def _serving_settings(settings: OdiaSettings, router: RouterFixture, **serving: object) -> OdiaSettings:
    return settings.model_copy(
        update={
            "router": router.settings.router.model_copy(
                update={"snapshot_dir": router.settings.state_dir / "routers"}
            ),
            "serving": settings.serving.model_copy(
                update={
                    **SMALL_ALWAYS,
                    "warmup_requests": 1,
                    "max_new_tokens": 32,
                    "max_in_flight": 16,
                    "commit_interval_s": 0.2,
                    "shadow_share": 0.0,
                    "metrics_port": 0,
                    **serving,
                }
            ),
        }
    )


async def test_every_request_gets_one_response_malformed_included(
    settings: OdiaSettings,
    app_router: RouterFixture,
    hf_generator: HFGenerator,
    adapters: tuple[AdapterEntry, AdapterEntry],
) -> None:
    s = _serving_settings(settings, app_router)
    reply = TopicSpec(name=f"client-replies-{uuid.uuid4().hex[:6]}", partitions=1)
    ensure_topics(s.kafka, [*s.topics.all(), reply])
    v1, _ = adapters
    publish_update(
        s,
        AdapterRegistry.to_model_update(v1, s.generator.name).model_copy(
            update={"router_version": app_router.version}
        ),
    )
    evs = app_router.held_out
    valid = [
        request_of(evs[0], "ok"),
        request_of(evs[1], "ok"),
        request_of(evs[2], "ok", reply_topic=reply.name),
    ]
    bad_schema = json.dumps({"request_id": "bad-schema-1", "query": ""}).encode()
    requests_topic = s.topics.requests.name
    async with serving_context(s, CoalescingGenerator(hf_generator, 8), app_router) as (consumer, runtime):
        assert runtime.versions.current.adapter_version == v1.version  # applied before the first request
        p = Producer({"bootstrap.servers": s.kafka.bootstrap_servers})
        for r in valid:
            p.produce(requests_topic, key=r.request_id.encode(), value=r.model_dump_json(), partition=0)
        p.produce(requests_topic, key=b"key-not-json", value=b"{this is not json", partition=1)
        p.produce(requests_topic, key=None, value=b"\xff\xfe not utf-8", partition=1)
        p.produce(requests_topic, key=None, value=bad_schema, partition=2)
        p.produce(requests_topic, key=b"key-empty", value=None, partition=2)
        assert p.flush(15) == 0
        want = {r.request_id for r in valid} | {
            "key-not-json",
            f"{requests_topic}:1:1",
            "bad-schema-1",
            "key-empty",
        }
        got = await asyncio.to_thread(collect_responses, s, [s.topics.responses.name, reply.name], want, 240)
        server = start_metrics_server(runtime)
        assert server is not None
        metrics = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
                .read()
                .decode()
            )
        )
        server.shutdown()
        deadline = time.monotonic() + 30
        while consumer.tracker.to_commit() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    ids = [r.request_id for _, r in got]
    assert sorted(ids) == sorted(want), "exactly one response per request"
    by_id = {r.request_id: (topic, r) for topic, r in got}
    assert by_id[valid[2].request_id][0] == reply.name
    for r in valid:
        resp = by_id[r.request_id][1]
        assert (
            resp.error is None
            and resp.served_by in ("small", "large")
            and resp.adapter_version == v1.version
        )
    for rid, needle in (
        ("key-not-json", "not JSON"),
        (f"{requests_topic}:1:1", "not UTF-8"),
        ("bad-schema-1", "not a ServeRequest"),
        ("key-empty", "empty"),
    ):
        resp = by_id[rid][1]
        assert resp.served_by == "none" and resp.call is None and needle in (resp.error or "")
        assert resp.route_reason == "malformed_request"
    assert consumer.counters.malformed == 4 and consumer.counters.answered == 7
    assert 'odia_serving_errors_total{kind="malformed"} 4.0' in metrics
    assert "odia_serving_latency_seconds_bucket" in metrics and "odia_serving_active_version" in metrics
    done, lag = group_lag(s.kafka, consumer.group_id, requests_topic)
    assert (done, lag) == (7, 0), "offsets committed up to every answered request"


async def test_hot_swap_under_a_steady_stream_loses_no_request(
    settings: OdiaSettings,
    app_router: RouterFixture,
    hf_generator: HFGenerator,
    adapters: tuple[AdapterEntry, AdapterEntry],
) -> None:
    await _hot_swap_loses_no_request(
        settings, app_router, hf_generator, CoalescingGenerator(hf_generator, 8), adapters, backend="hf"
    )


async def test_hot_swap_on_llamacpp_under_a_steady_stream_loses_no_request(
    settings: OdiaSettings,
    app_router: RouterFixture,
    base_model_dir: Path,
    adapters: tuple[AdapterEntry, AdapterEntry],
) -> None:
    """The same on the CPU default engine (llama.cpp, the adapters converted to GGUF at load)."""
    generator = LlamaCppGenerator(
        smollm2_gguf_path(), base_model_dir, adapter_cache=settings.state_dir / "lora-gguf", max_new_tokens=32
    )
    try:
        await _hot_swap_loses_no_request(settings, app_router, generator, generator, adapters, backend="llamacpp")
    finally:
        await generator.aclose()


async def _hot_swap_loses_no_request(
    settings: OdiaSettings,
    app_router: RouterFixture,
    engine: SmallGenerator,
    serving_generator: SmallGenerator,
    adapters: tuple[AdapterEntry, AdapterEntry],
    *,
    backend: str,
) -> None:
    s = _serving_settings(settings, app_router, max_new_tokens=16, warmup_requests=0)
    ensure_topics(s.kafka, s.topics.all())
    v1, v2 = adapters
    u1 = AdapterRegistry.to_model_update(v1, s.generator.name).model_copy(
        update={"router_version": app_router.version}
    )
    u2 = AdapterRegistry.to_model_update(v2, s.generator.name, previous_version=v1.version).model_copy(
        update={"router_version": app_router.version}
    )
    publish_update(s, u1)
    pool = steady_pool(app_router, small_every=4)
    async with serving_context(s, serving_generator, app_router, backend=backend) as (consumer, runtime):
        stream = await steady_stream(
            s,
            consumer,
            pool,
            swap=u2,
            interval_s=0.5,
            after_switch=4,
            limit=400,
        )
        got = await asyncio.to_thread(
            collect_responses, s, [s.topics.responses.name], {r.request_id for r in stream}, 600
        )
        swaps = [o for o in consumer.counters.swaps if o.status == "swapped"]
        await runtime.swapper.aclose()  # the old adapter is unloaded once its requests drained
        assert engine.loaded_versions() == [v2.version]
    assert [o.version for o in swaps] == [v1.version, v2.version]
    switched_at = swaps[1].switched_at
    assert switched_at is not None
    responses = [r for _, r in got]
    assert sorted(r.request_id for r in responses) == sorted(r.request_id for r in stream), (
        "none lost, none twice"
    )
    assert all(r.error is None for r in responses)
    assert {r.adapter_version for r in responses} == {v1.version, v2.version}
    for r in responses:
        started = r.answered_at.timestamp() - r.latency.total_ms / 1000.0
        if r.adapter_version == v1.version:
            assert started <= switched_at + 0.05, "a v1 response from a request that started after the switch"
        else:
            assert started >= switched_at - 0.05, (
                "a v2 response from a request that started before the switch"
            )
        assert r.route_reason != "escalated:generation_error"  # the adapter that generated is the one named
    assert runtime.metrics.value("odia_serving_swaps_total", {"status": "swapped"}) == 2
