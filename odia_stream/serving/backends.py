"""Which small-generator backend serves: vLLM in-process, a vLLM server over HTTP, or transformers."""

from __future__ import annotations

import asyncio
from typing import Literal

from odia_stream.generation.protocol import SmallGenerator
from odia_stream.generation.vllm_generator import vllm_available
from odia_stream.serving.coalescing import CoalescingGenerator
from odia_stream.settings import OdiaSettings

__all__ = ["Backend", "build_generator", "resolve_backend"]

Backend = Literal["hf", "vllm", "http"]


def resolve_backend(setting: str) -> Backend:
    """``auto`` → ``vllm`` when vLLM is importable here, else ``hf``; other values are checked and returned."""
    if setting == "auto":
        return "vllm" if vllm_available() else "hf"
    if setting not in ("hf", "vllm", "http"):
        raise ValueError(f"unknown serving backend {setting!r} (auto, hf, vllm, http)")
    return setting  # type: ignore[return-value]


async def build_generator(settings: OdiaSettings, backend: str | None = None) -> SmallGenerator:
    """Start the small generator of ``backend`` (default: ``settings.serving.backend``).

    The transformers backend is wrapped in a :class:`CoalescingGenerator` (it batches per call);
    vLLM, in-process or as a server, batches continuously and is used as is.
    """
    chosen = resolve_backend(backend or settings.serving.backend)
    if chosen == "vllm":
        from odia_stream.generation.vllm_generator import VllmGenerator

        return await VllmGenerator.start(settings)
    if chosen == "http":
        from odia_stream.generation.http_generator import HttpVllmGenerator

        return await HttpVllmGenerator.connect(settings)
    from odia_stream.generation.hf_generator import HFGenerator

    hf = await asyncio.to_thread(HFGenerator.from_settings, settings)
    return CoalescingGenerator(hf, settings.generator.max_batch_size)
