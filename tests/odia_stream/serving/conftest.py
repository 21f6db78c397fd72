"""Fixtures of the serving-engine tests: ``make_runtime`` (the real base model, the adapters, the HF backend
and the app's router it builds on are session fixtures of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.large_model.protocol import LargeModel
from odia_stream.serving import CoalescingGenerator, ServingRuntime, build_runtime
from schemas import ModelUpdate, RouterUpdate
from tests.serving.support import (
    RouterFixture,
    engine_settings,
    replay_large,
)


@pytest.fixture()
async def make_runtime(
    hf_generator: HFGenerator, adapters: tuple[AdapterEntry, AdapterEntry], app_router: RouterFixture
) -> AsyncIterator[Callable[..., object]]:
    """``await make_runtime(large_model=None, *, router=app_router, templates=True, adapter=True, **serving)``:
    a runtime serving adapter 1 (``adapter=False``: no adapter, a ``RouterUpdate``) with the real
    router of ``router`` (a fresh one per load)."""
    made: list[ServingRuntime] = []

    async def make(
        large_model: LargeModel | None = None,
        *,
        router: RouterFixture | None = None,
        templates: bool = True,
        adapter: bool = True,
        **serving: object,
    ) -> ServingRuntime:
        paired = router or app_router
        runtime = build_runtime(
            engine_settings(paired, templates, **serving),
            generator=CoalescingGenerator(hf_generator, 8),
            large_model=large_model or replay_large(app_router.events),
            router_loader=lambda version: paired.load(),
        )
        update: ModelUpdate | RouterUpdate = AdapterRegistry.to_model_update(adapters[0], "small").model_copy(
            update={"router_version": paired.version}
        ) if adapter else RouterUpdate(kind="router_only", generator="small", router_version=paired.version)
        outcome = await runtime.swapper.apply(update)
        assert outcome.status == "swapped", outcome.reason
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.aclose(close_generator=False)
