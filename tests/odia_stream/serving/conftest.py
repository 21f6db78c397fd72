"""Fixtures of the serving-engine tests: the real base model, two tiny real adapters, the HF backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.generation.base_model import PACKAGED_SMOLLM2, base_model_id, resolve_base_model
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.large_model.protocol import LargeModel
from odia_stream.serving import CoalescingGenerator, ServingRuntime, build_runtime
from odia_stream.settings import PromptSettings
from schemas import FCLogEvent
from tests.serving.support import (
    RouterFixture,
    app_events,
    engine_settings,
    replay_large,
    split_events,
    tiny_adapter,
    training_examples,
)
from tests.serving.support import app_router as app_router_of


@pytest.fixture(scope="session")
def base_model_dir(model_cache: Path) -> Path:
    """The converted SmolLM2-135M-Instruct folder."""
    return resolve_base_model(PACKAGED_SMOLLM2, model_cache)


@pytest.fixture(scope="session")
def serving_app(datasets_dir: Path) -> tuple[list[FCLogEvent], list[FCLogEvent]]:
    """``(learn, held_out)`` records of the bench's small SNIPS app (two functions), split by query group."""
    return split_events(app_events(datasets_dir / "snips", 80), 0.3)


@pytest.fixture(scope="session")
def adapter_dirs(
    base_model_dir: Path, model_cache: Path, serving_app: tuple[list[FCLogEvent], list[FCLogEvent]]
) -> tuple[Path, Path]:
    """Two different real adapters: 3 and 1 LoRA steps on the app's records (trained once, cached)."""
    examples = training_examples(serving_app[0][:12], PromptSettings())
    return (
        tiny_adapter(base_model_dir, examples, model_cache, steps=3, seed=1),
        tiny_adapter(base_model_dir, examples[:4], model_cache, steps=1, seed=2),
    )


@pytest.fixture()
def adapters(
    tmp_path: Path, base_model_dir: Path, adapter_dirs: tuple[Path, Path]
) -> tuple[AdapterEntry, AdapterEntry]:
    """The two adapters registered in a fresh registry (content versions)."""
    registry = AdapterRegistry(tmp_path / "registry")
    return tuple(registry.register(d, base_model=base_model_id(base_model_dir)) for d in adapter_dirs)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def _hf_session(base_model_dir: Path) -> Iterator[HFGenerator]:
    gen = HFGenerator(base_model_dir, max_new_tokens=32, max_batch_size=8)
    yield gen
    asyncio.run(gen.aclose())


@pytest.fixture()
def hf_generator(_hf_session: HFGenerator) -> Iterator[HFGenerator]:
    """The session's transformers backend, with every adapter a test loaded unloaded afterwards."""
    yield _hf_session
    for version in _hf_session.loaded_versions():
        asyncio.run(_hf_session.unload_adapter(version))


@pytest.fixture(scope="session")
def app_router(
    datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory, adapter_dirs: tuple[Path, Path]
) -> RouterFixture:
    """The real router over 1,200 records of the app (learner + snapshot paired with the first adapter)."""
    return app_router_of(datasets_dir / "snips", tmp_path_factory.mktemp("router-state"), adapter_dirs[0])


@pytest.fixture()
async def make_runtime(
    hf_generator: HFGenerator, adapters: tuple[AdapterEntry, AdapterEntry], app_router: RouterFixture
) -> AsyncIterator[Callable[..., object]]:
    """``await make_runtime(large_model=None, *, router=app_router, templates=True, **serving)``: a
    runtime serving adapter 1 with the real router of ``router`` (a fresh one per load)."""
    made: list[ServingRuntime] = []

    async def make(
        large_model: LargeModel | None = None,
        *,
        router: RouterFixture | None = None,
        templates: bool = True,
        **serving: object,
    ) -> ServingRuntime:
        paired = router or app_router
        runtime = build_runtime(
            engine_settings(paired, templates, **serving),
            generator=CoalescingGenerator(hf_generator, 8),
            large_model=large_model or replay_large(app_router.events),
            router_loader=lambda version: paired.load(),
        )
        update = AdapterRegistry.to_model_update(adapters[0], "small").model_copy(
            update={"router_version": paired.version}
        )
        outcome = await runtime.swapper.apply(update)
        assert outcome.status == "swapped", outcome.reason
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.aclose(close_generator=False)
