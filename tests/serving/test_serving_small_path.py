"""Never slower than the large model alone, end to end: the real broker, the real router and adapter,
the real transformers backend behind a deliberate 30 s delay (a small model far slower than the large
one). Large-routed requests are answered at the large model's latency, small-routed ones within the
hedge delay plus the large model's latency (hedged, or sent large by the latency gate once it has
measured the small path)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer

from kafka_runtime.topics import ensure_topics
from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.generation.protocol import GenerationRequest, GenerationResult
from odia_stream.serving.small_path import HEDGED, SMALL_NOT_FASTER
from odia_stream.settings import OdiaSettings
from tests.serving.support import (
    RouterFixture,
    collect_responses,
    large_routed,
    publish_update,
    request_of,
    serving_context,
)

SMALL_DELAY_S = 30.0
HEDGE_MS = 300.0
#: Room for a loaded 2-core machine (broker round trips, the event loop) over hedge + large latency.
SLACK_MS = 2500.0


class _DelayedSmall:
    """The real transformers backend, every generation delayed by ``delay_s`` first (a deliberately
    slow small model); everything else is the real backend's."""

    def __init__(self, inner: HFGenerator, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.generations = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.generations += 1
        await asyncio.sleep(self.delay_s)
        return await self.inner.generate(requests)

    async def aclose(self) -> None:
        """The session's backend outlives the test."""


async def test_a_slow_small_model_leaves_every_request_at_large_model_latency(
    settings: OdiaSettings,
    app_router: RouterFixture,
    hf_generator: HFGenerator,
    adapters: tuple[AdapterEntry, AdapterEntry],
) -> None:
    s = settings.model_copy(update={
        "router": app_router.settings.router.model_copy(
            update={"snapshot_dir": app_router.settings.state_dir / "routers"}),
        "templates": settings.templates.model_copy(update={"enabled": False}),
        "serving": settings.serving.model_copy(update={
            "hedge": True, "hedge_max_delay_ms": HEDGE_MS, "latency_gate": "latency",
            "latency_min_samples": 3, "gate_probe_share": 0.0, "warmup_requests": 0, "shadow_share": 0.0,
            "commit_interval_s": 0.2, "metrics_port": None, "small_latency_budget_ms": 600_000.0,
        }),
    })
    ensure_topics(s.kafka, s.topics.all())
    v1, _ = adapters
    publish_update(s, AdapterRegistry.to_model_update(v1, s.generator.name).model_copy(
        update={"router_version": app_router.version}))
    router = app_router.load()
    # Serving's router embeds each query on one BLAS thread (settings.embedding.router_threads).
    assert getattr(getattr(router, "embedder").inner, "threads") == s.embedding.router_threads == 1
    small = [request_of(e, "small") for e in app_router.held_out]
    small = [r for r in small if router.decide(r).route == "small"][:8]
    large = [request_of(e, "large") for e in large_routed(app_router, 4)]
    assert len(small) >= 4, "the app's router sends some held-out records small"
    slow = _DelayedSmall(hf_generator, SMALL_DELAY_S)
    async with serving_context(s, slow, app_router) as (_, runtime):
        p = Producer({"bootstrap.servers": s.kafka.bootstrap_servers})
        for r in small + large:
            p.produce(s.topics.requests.name, key=r.request_id.encode(), value=r.model_dump_json())
        assert p.flush(15) == 0
        got = await asyncio.to_thread(
            collect_responses, s, [s.topics.responses.name], {r.request_id for r in small + large}, 120
        )
        metrics = runtime.metrics
    by_id = {r.request_id: r for _, r in got}
    assert len(by_id) == len(small) + len(large)
    for r in large:
        resp = by_id[r.request_id]
        assert resp.served_by == "large" and resp.route_reason not in (HEDGED, SMALL_NOT_FASTER)
        assert resp.latency.total_ms < 100 + SLACK_MS, "large-routed: never waits for the small model"
    reasons = {by_id[r.request_id].route_reason for r in small}
    assert reasons <= {HEDGED, SMALL_NOT_FASTER} and HEDGED in reasons, reasons
    for r in small:
        resp = by_id[r.request_id]
        assert resp.served_by == "large" and resp.error is None and resp.call is not None
        assert resp.latency.total_ms < HEDGE_MS + 100 + SLACK_MS, "hedge + large latency, not the small 30 s"
    assert metrics.value("odia_serving_hedges_total", {"winner": "large"}) == sum(
        1 for r in small if by_id[r.request_id].route_reason == HEDGED)
    assert slow.generations >= 1
