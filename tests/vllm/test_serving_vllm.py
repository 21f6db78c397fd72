"""Serving on the in-process vLLM backend (CPU build): a hot swap under a steady stream of requests
on the real broker loses none, and every response names the version that produced it.

Runs in ``.venv-vllm`` (``make test-vllm``); collected only where vLLM is installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from kafka_runtime.topics import ensure_topics
from odia.bench.serve_bench import build_router_snapshot
from odia_stream.generation.adapter_digest import version_of
from odia_stream.generation.protocol import AdapterRef
from odia_stream.generation.vllm_generator import VllmGenerator
from odia_stream.prompting import PROMPT_FORMAT_VERSION
from odia_stream.serving import resolve_backend
from odia_stream.settings import OdiaSettings
from schemas import ModelUpdate
from tests.serving.support import (
    SMALL_ALWAYS,
    RouterFixture,
    app_events,
    collect_responses,
    publish_update,
    serving_context,
    split_events,
    steady_pool,
    steady_stream,
)
from tests.vllm.support import MakeAdapter

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def vllm_generator(
    base_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[VllmGenerator]:
    settings = OdiaSettings(state_dir=tmp_path_factory.mktemp("vllm-serving"))
    gen = await VllmGenerator.start(settings, model_dir=base_dir)
    try:
        yield gen
    finally:
        await gen.aclose()


@pytest.fixture(scope="module")
def vllm_router(
    datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory, make_adapter: MakeAdapter
) -> RouterFixture:
    events = app_events(datasets_dir / "snips", 600)
    learn, held = split_events(events, 0.3)
    settings = OdiaSettings(state_dir=tmp_path_factory.mktemp("vllm-router"))
    version = build_router_snapshot(settings, learn, version_of(make_adapter(1).sha256))
    return RouterFixture(settings, version, events, held)


def _update(ref: AdapterRef, router_version: str, previous: str | None = None) -> ModelUpdate:
    return ModelUpdate(
        generator="small",
        version=ref.version,
        adapter_uri=Path(ref.path).resolve().as_uri(),
        sha256=ref.sha256,
        base_model=ref.base_model,
        router_version=router_version,
        previous_version=previous,
        prompt_format=PROMPT_FORMAT_VERSION,  # a random adapter, announced in the serving format
    )


async def test_auto_backend_is_vllm_here() -> None:
    assert resolve_backend("auto") == "vllm"


async def test_hot_swap_under_a_steady_stream_loses_no_request_on_vllm(
    settings: OdiaSettings,
    vllm_generator: VllmGenerator,
    vllm_router: RouterFixture,
    make_adapter: MakeAdapter,
) -> None:
    s = settings.model_copy(
        update={
            "router": vllm_router.settings.router.model_copy(
                update={"snapshot_dir": vllm_router.settings.state_dir / "routers"}
            ),
            "serving": settings.serving.model_copy(
                update={
                    "backend": "vllm",
                    **SMALL_ALWAYS,
                    "warmup_requests": 1,
                    "max_new_tokens": 16,  # random adapters write noise: short answers keep the stream quick
                    "commit_interval_s": 0.2,
                    "metrics_port": None,
                }
            ),
        }
    )
    ensure_topics(s.kafka, s.topics.all())
    a1, a2 = make_adapter(1), make_adapter(2)
    publish_update(s, _update(a1, vllm_router.version))
    pool = steady_pool(vllm_router, small_every=3)
    async with serving_context(s, vllm_generator, vllm_router) as (consumer, runtime):
        stream = await steady_stream(
            s,
            consumer,
            pool,
            swap=_update(a2, vllm_router.version, previous=a1.version),
            interval_s=0.5,
            after_switch=8,
            limit=600,
            swap_after=8,
        )
        want = {r.request_id for r in stream}
        got = await asyncio.to_thread(collect_responses, s, [s.topics.responses.name], want, 600)
        swaps = [o for o in consumer.counters.swaps if o.status == "swapped"]
        await runtime.swapper.aclose()
        assert vllm_generator.loaded_versions() == [a2.version]
    assert [o.version for o in swaps] == [a1.version, a2.version]
    switched_at = swaps[1].switched_at
    assert switched_at is not None
    responses = [r for _, r in got]
    assert sorted(r.request_id for r in responses) == sorted(want), "none lost, none twice"
    assert all(r.error is None for r in responses)
    assert {r.adapter_version for r in responses} == {a1.version, a2.version}
    for r in responses:
        started = r.answered_at.timestamp() - r.latency.total_ms / 1000.0
        if r.adapter_version == a1.version:
            assert started <= switched_at + 0.05
        else:
            assert started >= switched_at - 0.05
        assert r.route_reason != "escalated:generation_error"
