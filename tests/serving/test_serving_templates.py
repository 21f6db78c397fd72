"""The template tier end to end on the real broker: a request whose template has a live program is
answered from it (``served_by = "template"``, no generation); one without a program goes on to
the models as before. Served with a router alone (a ``RouterUpdate``: no adapter has passed the
trainer's gate yet), templates answer the same and the rest goes large (``no_adapter``)."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer

from kafka_runtime.topics import ensure_topics
from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.serving import CoalescingGenerator
from odia_stream.settings import OdiaSettings
from schemas import RouterUpdate
from tests.serving.support import (
    SMALL_ALWAYS,
    RouterFixture,
    collect_responses,
    publish_update,
    request_of,
    serving_context,
    template_router,
)


@pytest.mark.parametrize("with_adapter", [True, False], ids=["adapter", "router-alone"])
async def test_a_template_answer_reaches_the_responses_topic(
    settings: OdiaSettings,
    app_router: RouterFixture,
    hf_generator: HFGenerator,
    adapters: tuple[AdapterEntry, AdapterEntry],
    with_adapter: bool,
) -> None:
    router = template_router(app_router)
    s = settings.model_copy(update={
        "router": router.settings.router,
        "serving": settings.serving.model_copy(update={
            **SMALL_ALWAYS, "warmup_requests": 0, "max_new_tokens": 32,
            "commit_interval_s": 0.2, "shadow_share": 0.0, "metrics_port": None,
        }),
    })
    ensure_topics(s.kafka, s.topics.all())
    v1, _ = adapters
    if with_adapter:
        publish_update(s, AdapterRegistry.to_model_update(v1, s.generator.name).model_copy(
            update={"router_version": router.version}
        ))
    else:
        publish_update(s, RouterUpdate(kind="router_only", generator=s.generator.name, router_version=router.version))
    probe = router.load()
    answerable = next(
        ev for ev in router.events
        if (d := probe.decide(request_of(ev, "probe"))).route == "small"
        and probe.template_answer(request_of(ev, "probe"), d.function).call is not None
    )
    other = next(
        ev for ev in router.held_out
        if (d := probe.decide(request_of(ev, "probe"))).route == "small"
        and probe.template_answer(request_of(ev, "probe"), d.function).miss == "no_program"
    )
    requests = [request_of(answerable, "tpl"), request_of(other, "model")]
    async with serving_context(s, CoalescingGenerator(hf_generator, 8), router) as (_, runtime):
        assert runtime.versions.current.router_version == router.version
        assert runtime.versions.current.adapter_version == (v1.version if with_adapter else None)
        p = Producer({"bootstrap.servers": s.kafka.bootstrap_servers})
        for r in requests:
            p.produce(s.topics.requests.name, key=r.request_id.encode(), value=r.model_dump_json())
        assert p.flush(15) == 0
        got = await asyncio.to_thread(
            collect_responses, s, [s.topics.responses.name], {r.request_id for r in requests}, 240
        )
    by_id = {resp.request_id: resp for _, resp in got}
    tpl = by_id[requests[0].request_id]
    assert tpl.served_by == "template" and tpl.call is not None and tpl.program is not None
    assert tpl.latency.generate_ms == 0 and tpl.latency.template_ms > 0
    assert tpl.adapter_version == (v1.version if with_adapter else None) and tpl.router_version == router.version
    rest = by_id[requests[1].request_id]
    assert rest.served_by in ("small", "large") and rest.program is None, "no program: the models answer"
    if not with_adapter:
        assert rest.served_by == "large" and rest.route_reason == "no_adapter", rest
