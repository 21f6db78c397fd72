"""Hot swap on the real transformers backend with real adapters: atomic switch, drain, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.generation.calls import request_for
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.serving import (
    CoalescingGenerator,
    HotSwapper,
    ServingMetrics,
    VersionHolder,
    fixed_warmup_prompt,
)
from odia_stream.settings import PromptSettings
from schemas import ModelUpdate, RouterUpdate
from tests.serving.support import RouterFixture, template_router


def _update(entry: AdapterEntry, **changes: object) -> ModelUpdate:
    return AdapterRegistry.to_model_update(entry, "small").model_copy(update=changes)


def _swapper(generator: CoalescingGenerator, versions: VersionHolder, metrics: ServingMetrics) -> HotSwapper:
    return HotSwapper(
        generator,
        versions,
        prompt_options=PromptSettings(),
        metrics=metrics,
        warmup_requests=2,
        max_new_tokens=4,
        drain_timeout_s=60,
    )


async def test_in_flight_requests_finish_on_their_version_and_the_old_adapter_drains(
    hf_generator: HFGenerator, adapters: tuple[AdapterEntry, AdapterEntry]
) -> None:
    v1, v2 = adapters
    gen = CoalescingGenerator(hf_generator, 8)
    versions, metrics = VersionHolder(), ServingMetrics()
    swapper = _swapper(gen, versions, metrics)
    first = await swapper.apply(_update(v1))
    assert first.status == "swapped" and versions.current.adapter_version == v1.version
    prompt = fixed_warmup_prompt(PromptSettings())
    started = asyncio.Event()

    async def request_on_current() -> tuple[str | None, str | None]:
        with versions.acquire() as active:
            started.set()
            result = (await gen.generate([request_for(prompt, active.adapter, 24)]))[0]
            await asyncio.sleep(0.5)  # still in flight after the swap has switched
            return active.adapter_version, result.adapter_version

    in_flight = asyncio.create_task(request_on_current())
    await started.wait()
    second = await swapper.apply(_update(v2, previous_version=v1.version))
    assert second.status == "swapped" and second.previous == v1.version
    assert versions.current.adapter_version == v2.version
    if not in_flight.done():
        assert v1.version in hf_generator.loaded_versions()  # not unloaded under a running request
    assert await in_flight == (v1.version, v1.version)
    await swapper.aclose()
    assert hf_generator.loaded_versions() == [v2.version]
    with versions.acquire() as active:
        after = (await gen.generate([request_for(prompt, active.adapter, 4)]))[0]
    assert after.adapter_version == v2.version
    assert metrics.value("odia_serving_swaps_total", {"status": "swapped"}) == 2
    assert (
        metrics.value(
            "odia_serving_active_version", {"adapter_version": v2.version, "router_version": "none"}
        )
        == 1
    )


async def test_a_failed_verification_keeps_the_current_version(
    hf_generator: HFGenerator, adapters: tuple[AdapterEntry, AdapterEntry], tmp_path: Path
) -> None:
    v1, v2 = adapters
    gen = CoalescingGenerator(hf_generator, 8)
    versions, metrics = VersionHolder(), ServingMetrics()
    swapper = _swapper(gen, versions, metrics)
    assert (await swapper.apply(_update(v1))).status == "swapped"
    bad_sha = await swapper.apply(_update(v2, sha256="0" * 64))
    assert bad_sha.status == "failed" and "hash to" in bad_sha.reason
    missing = await swapper.apply(_update(v2, adapter_uri=(tmp_path / "nowhere").as_uri()))
    assert missing.status == "failed" and "does not exist" in missing.reason
    other_scheme = await swapper.apply(_update(v2, adapter_uri="s3://bucket/adapter"))
    assert other_scheme.status == "failed"
    other_base = await swapper.apply(_update(v2, base_model="some-other-model"))
    assert other_base.status == "ignored"
    # An adapter trained on the old prompt format (the model chose the function) is refused, not misused.
    old_format = await swapper.apply(_update(v2, prompt_format=1))
    assert old_format.status == "failed" and "trained on prompt format 1" in old_format.reason
    assert "renders format 4" in old_format.reason and "ALIAS_ARGUMENTS=False" in old_format.reason
    # So is one trained with aliased argument names (format 2) under the declared-names default.
    aliased = await swapper.apply(_update(v2, prompt_format=2))
    assert aliased.status == "failed" and "trained on prompt format 2" in aliased.reason
    assert versions.current.adapter_version == v1.version
    assert hf_generator.loaded_versions() == [v1.version]
    assert metrics.value("odia_serving_swaps_total", {"status": "failed"}) == 5
    assert metrics.value("odia_serving_swaps_total", {"status": "ignored"}) == 1
    again = await swapper.apply(_update(v1))
    assert again.status == "unchanged"
    rollback_target = await swapper.apply(_update(v2))
    rollback = await swapper.apply(_update(v1, previous_version=v2.version))
    assert rollback_target.status == rollback.status == "swapped"
    assert versions.current.adapter_version == v1.version
    await swapper.aclose()


def _router_swapper(
    hf_generator: HFGenerator, *routers: RouterFixture
) -> tuple[HotSwapper, VersionHolder, ServingMetrics]:
    """A swapper over the HF backend that loads the snapshots of ``routers`` by version."""
    by_version = {r.version: r for r in routers}
    versions, metrics = VersionHolder(), ServingMetrics()
    swapper = HotSwapper(CoalescingGenerator(hf_generator, 8), versions, prompt_options=PromptSettings(),
                         router_loader=lambda v: by_version[v].load(), metrics=metrics, warmup_requests=1,
                         max_new_tokens=4)
    return swapper, versions, metrics


async def test_the_serving_adapter_sent_again_with_a_new_router_swaps_the_router_alone(
    hf_generator: HFGenerator, adapters: tuple[AdapterEntry, AdapterEntry], app_router: RouterFixture
) -> None:
    """What a rejected training round sends: the serving adapter (same version and hash) paired
    with a router of newer learner state. The router is switched; the adapter stays loaded."""
    v1, _ = adapters
    refreshed = template_router(app_router)
    swapper, versions, metrics = _router_swapper(hf_generator, app_router, refreshed)
    assert (await swapper.apply(_update(v1, router_version=app_router.version))).status == "swapped"
    first_router = versions.current.router
    again = await swapper.apply(_update(v1, router_version=refreshed.version, previous_version=v1.version))
    assert again.status == "swapped" and again.previous == v1.version and again.router_version == refreshed.version
    assert versions.current.adapter_version == v1.version and versions.current.router_version == refreshed.version
    assert versions.current.router is not first_router and v1.version in hf_generator.loaded_versions()
    assert (await swapper.apply(_update(v1, router_version=refreshed.version))).status == "unchanged"
    labels = {"adapter_version": v1.version, "router_version": refreshed.version}
    assert metrics.value("odia_serving_active_version", labels) == 1
    await swapper.aclose()
    assert v1.version in hf_generator.loaded_versions()  # never unloaded: it serves on


async def test_a_router_sent_alone_serves_with_no_adapter_and_unloads_the_old_one(
    hf_generator: HFGenerator, adapters: tuple[AdapterEntry, AdapterEntry], app_router: RouterFixture
) -> None:
    """What a round that promotes nothing sends while no adapter can serve: the router alone. The
    serving adapter (say, a rollback target of another prompt format) is unloaded once drained."""
    _, v2 = adapters
    alone = template_router(app_router)
    swapper, versions, metrics = _router_swapper(hf_generator, app_router, alone)
    assert (await swapper.apply(_update(v2, router_version=app_router.version))).status == "swapped"
    update = RouterUpdate(kind="router_only", generator="small", router_version=alone.version, reason="test")
    outcome = await swapper.apply(update)
    assert outcome.status == "swapped" and outcome.version is None and outcome.previous == v2.version
    assert outcome.router_version == alone.version and outcome.load_ms == outcome.warmup_ms == 0
    assert versions.current.adapter is None and versions.current.router_version == alone.version
    assert versions.current.update == update
    assert metrics.value("odia_serving_active_version", {"adapter_version": "none", "router_version": alone.version}) == 1
    assert (await swapper.apply(update)).status == "unchanged"
    missing = await swapper.apply(update.model_copy(update={"router_version": "no-such-router"}))
    assert missing.status == "failed" and "no-such-router" in missing.reason
    assert versions.current.router_version == alone.version
    await swapper.aclose()
    assert v2.version not in hf_generator.loaded_versions()
