"""Fixtures of the serving consumer's integration tests (real broker, HF backend, tiny real adapters, real router)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from odia_stream.generation.base_model import PACKAGED_SMOLLM2, resolve_base_model
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.settings import PromptSettings
from tests.serving.support import (
    RouterFixture,
    app_events,
    app_router,
    split_events,
    tiny_adapter,
    training_examples,
)


@pytest.fixture(scope="session")
def serving_base_dir(model_cache: Path) -> Path:
    """The converted SmolLM2-135M-Instruct folder."""
    return resolve_base_model(PACKAGED_SMOLLM2, model_cache)


@pytest.fixture(scope="session")
def serving_router(
    datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory, serving_adapter_dirs: tuple[Path, Path]
) -> RouterFixture:
    """The real router over 1,200 records of the bench's SNIPS app, paired with the first adapter."""
    return app_router(datasets_dir / "snips", tmp_path_factory.mktemp("serving-router"), serving_adapter_dirs[0])


@pytest.fixture(scope="session")
def serving_adapter_dirs(datasets_dir: Path, serving_base_dir: Path, model_cache: Path) -> tuple[Path, Path]:
    """Two different real adapters (3 and 1 LoRA steps; trained once, cached by content)."""
    learn, _ = split_events(app_events(datasets_dir / "snips", 80), 0.3)
    examples = training_examples(learn[:12], PromptSettings())
    return (
        tiny_adapter(serving_base_dir, examples, model_cache, steps=3, seed=1),
        tiny_adapter(serving_base_dir, examples[:4], model_cache, steps=1, seed=2),
    )


@pytest.fixture(scope="session")
def serving_hf(serving_base_dir: Path) -> Iterator[HFGenerator]:
    """One transformers backend for the session (adapters are loaded per test under their versions)."""
    import asyncio

    gen = HFGenerator(serving_base_dir, max_new_tokens=32, max_batch_size=8)
    yield gen
    asyncio.run(gen.aclose())
