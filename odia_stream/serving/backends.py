"""Which small-generator backend serves: llama.cpp, vLLM in-process, a vLLM server over HTTP, or transformers."""

from __future__ import annotations

import asyncio
from typing import Literal

from odia_stream.generation.llamacpp_generator import llamacpp_available
from odia_stream.generation.protocol import SmallGenerator
from odia_stream.generation.vllm_generator import vllm_available
from odia_stream.serving.coalescing import CoalescingGenerator
from odia_stream.settings import OdiaSettings

__all__ = ["BACKENDS", "Backend", "build_generator", "evaluation_generator", "resolve_backend"]

Backend = Literal["hf", "llamacpp", "vllm", "http"]
BACKENDS: tuple[Backend, ...] = ("hf", "llamacpp", "vllm", "http")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(setting: str) -> Backend:
    """``auto`` → the fastest engine installed here: vLLM on a GPU, else llama.cpp (the fastest on a CPU,
    ``docs/engines.md``), else vLLM on the CPU, else transformers. Other values are checked and returned."""
    if setting == "auto":
        if vllm_available() and _cuda_available():
            return "vllm"
        if llamacpp_available():
            return "llamacpp"
        return "vllm" if vllm_available() else "hf"
    if setting not in BACKENDS:
        raise ValueError(f"unknown serving backend {setting!r} (auto, {', '.join(BACKENDS)})")
    return setting  # type: ignore[return-value]


async def build_generator(settings: OdiaSettings, backend: str | None = None) -> SmallGenerator:
    """Start the small generator of ``backend`` (default: ``settings.serving.backend``).

    The transformers backend is wrapped in a :class:`CoalescingGenerator` (it batches per call);
    vLLM, in-process or as a server, batches continuously, and llama.cpp generates one request at a
    time: both are used as they are.
    """
    chosen = resolve_backend(backend or settings.serving.backend)
    if chosen == "llamacpp":
        from odia_stream.generation.llamacpp_generator import LlamaCppGenerator

        return await asyncio.to_thread(LlamaCppGenerator.from_settings, settings)
    if chosen == "vllm":
        from odia_stream.generation.vllm_generator import VllmGenerator

        return await VllmGenerator.start(settings)
    if chosen == "http":
        from odia_stream.generation.http_generator import HttpVllmGenerator

        return await HttpVllmGenerator.connect(settings)
    from odia_stream.generation.hf_generator import HFGenerator

    hf = await asyncio.to_thread(HFGenerator.from_settings, settings)
    return CoalescingGenerator(hf, settings.generator.max_batch_size)


def evaluation_generator(settings: OdiaSettings) -> SmallGenerator:
    """The generator the trainer scores candidate adapters on (blocking start).

    The serving engine where that is llama.cpp, so the per-function accuracy that decides what the
    small model is sent is measured on the engine that will answer (and an adapter is converted to
    GGUF once, before serving loads it); transformers otherwise (vLLM and a vLLM server serve the
    transformers checkpoint itself).
    """
    if resolve_backend(settings.serving.backend) == "llamacpp":
        from odia_stream.generation.llamacpp_generator import LlamaCppGenerator

        return LlamaCppGenerator.from_settings(settings)
    from odia_stream.generation.hf_generator import HFGenerator

    return HFGenerator.from_settings(settings)
