"""Tests that need vLLM: collected only where vLLM is importable (``.venv-vllm``, see docs/vllm.md).

Run them with ``make test-vllm`` (builds ``.venv-vllm`` first, then ``.venv-vllm/bin/pytest -q tests/vllm``).
In the main environment this folder collects nothing.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from odia_stream.adapters.random_adapter import random_lora_adapter
from odia_stream.datasets import load_dataset
from odia_stream.generation.base_model import PACKAGED_SMOLLM2, resolve_base_model
from odia_stream.generation.protocol import AdapterRef
from schemas import FCLogEvent
from tests.vllm.support import MakeAdapter

# This folder is named like the package, and ``tests/`` is on sys.path, so ``import vllm`` would find
# it as a namespace package: only a real installation (a spec with an origin) counts.
_VLLM = importlib.util.find_spec("vllm")
collect_ignore_glob = [] if _VLLM is not None and _VLLM.origin is not None else ["test_*.py"]


@pytest.fixture(scope="session")
def base_dir(model_cache: Path) -> Path:
    """The packaged SmolLM2-135M-Instruct as a transformers folder (converted once, cached)."""
    return resolve_base_model(PACKAGED_SMOLLM2, model_cache)


@pytest.fixture(scope="session")
def make_adapter(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> MakeAdapter:
    """``make_adapter(seed)``: a real peft LoRA adapter folder on the base model (random, non-zero
    weights, so it visibly changes greedy outputs), with its published sha256 and version."""
    made: dict[int, AdapterRef] = {}

    def make(seed: int) -> AdapterRef:
        if seed not in made:
            made[seed] = random_lora_adapter(base_dir, tmp_path_factory.mktemp(f"adapter-{seed}") / "adapter", seed=seed)
        return made[seed]

    return make


@pytest.fixture(scope="session")
def snips_sample(snips_by_function: Mapping[str, Sequence[FCLogEvent]]) -> list[FCLogEvent]:
    """One SNIPS event per intent (all 7 tools offered), seeded: every generation on a 2-core CPU
    costs seconds, so each intent is asked once (the first of the two drawn when it was two)."""
    rng = random.Random(3)
    return [rng.sample(snips_by_function[name], 2)[0] for name in sorted(snips_by_function)]


@pytest.fixture(scope="session")
def hammerbench_sample(datasets_dir: Path) -> list[FCLogEvent]:
    """Three HammerBench zh multi-turn events (several tools offered, calls in the history)."""
    events = list(load_dataset(datasets_dir / "hammerbench" / "zh" / "HammerBench_mQmA.json"))
    multi = [ev for ev in events if ev.history and ev.call is not None]
    return random.Random(5).sample(multi, 3)


def bounded(schema: Any, max_chars: int = 40) -> Any:
    """``schema`` with ``maxLength`` on every free string, so no value can run past the token budget
    (the untrained base model sometimes repeats itself inside a string until ``max_new_tokens``)."""
    if isinstance(schema, dict):
        out = {k: bounded(v, max_chars) for k, v in schema.items()}
        if out.get("type") == "string" and not {"enum", "const", "pattern", "maxLength"} & set(out):
            out["maxLength"] = max_chars
        return out
    if isinstance(schema, list):
        return [bounded(v, max_chars) for v in schema]
    return schema


@pytest.fixture(scope="session")
def bound_strings() -> Callable[[Any], Any]:
    """:func:`bounded` (conftest modules are not importable from tests)."""
    return bounded
