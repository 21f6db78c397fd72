"""Fixtures of the generation tests: the packaged SmolLM2, converted once into the shared model cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia_stream.generation.base_model import PACKAGED_SMOLLM2, resolve_base_model


@pytest.fixture(scope="session")
def smollm2_dir(model_cache: Path) -> Path:
    """The converted SmolLM2-135M-Instruct folder (converted on first use, ~40 s, then cached)."""
    return resolve_base_model(PACKAGED_SMOLLM2, model_cache)

