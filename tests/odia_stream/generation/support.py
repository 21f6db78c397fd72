"""Helpers of the generation tests."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Awaitable
from pathlib import Path

import pytest

from odia_stream.generation.protocol import (
    AdapterBaseMismatch,
    AdapterIntegrityError,
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    SmallGenerator,
)


async def ticks_while(work: Awaitable[object], interval_s: float = 0.005) -> int:
    """How often a task sleeping ``interval_s`` woke while ``work`` ran: a generator that blocked the
    event loop lets it wake once at most."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(interval_s)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await work
    finally:
        task.cancel()
    return ticks


async def assert_verified_before_loading(
    generator: SmallGenerator, ref: AdapterRef, request: GenerationRequest, scratch: Path
) -> None:
    """``ref`` with a wrong sha256, with one byte of its folder changed, or for another base model is
    refused before anything is loaded, and ``request`` (with ``ref``) is refused while it is not loaded."""
    with pytest.raises(AdapterIntegrityError):
        await generator.load_adapter(dataclasses.replace(ref, sha256="0" * 64))
    tampered = scratch / "tampered"
    shutil.copytree(ref.path, tampered)
    (tampered / "adapter_config.json").write_text((tampered / "adapter_config.json").read_text() + " ")
    with pytest.raises(AdapterIntegrityError):
        await generator.load_adapter(dataclasses.replace(ref, path=tampered))
    with pytest.raises(AdapterBaseMismatch):
        await generator.load_adapter(dataclasses.replace(ref, base_model="Qwen/Qwen2.5-0.5B-Instruct"))
    with pytest.raises(AdapterNotLoaded):
        await generator.generate([request])
    assert generator.loaded_versions() == []
