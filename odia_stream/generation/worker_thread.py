"""What the in-process generators (transformers, llama.cpp) share: one worker thread for every
model call, and the adapters loaded by version.

Every call to the model runs on that one thread: the event loop stays free while a batch is
generated, and loading or freeing an adapter waits for the generation before it (never
interleaves with it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from odia_stream.generation.protocol import AdapterError, AdapterNotLoaded, AdapterRef

__all__ = ["WorkerThreadGenerator"]

T = TypeVar("T")
#: What a generator keeps of a loaded adapter.
V = TypeVar("V")


class WorkerThreadGenerator(Generic[V]):
    """Base of a :class:`~odia_stream.generation.protocol.SmallGenerator` that calls its model from
    one worker thread; subclasses implement ``_load_blocking`` and ``_free_blocking``."""

    def __init__(self, thread_name: str) -> None:
        self._loaded: dict[str, V] = {}  # version -> what is kept of it, in load order
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def loaded_versions(self) -> list[str]:
        """Versions of the loaded adapters, in load order."""
        return list(self._loaded)

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Verify ``ref`` (sha256, base model), load it under ``ref.version`` and warm it up."""
        await self._run(lambda: self._load_blocking(ref))

    async def unload_adapter(self, version: str) -> None:
        """Free a loaded adapter (:class:`AdapterNotLoaded` when it is not loaded)."""
        await self._run(lambda: self._unload_blocking(version))

    def _unload_blocking(self, version: str) -> None:
        if version not in self._loaded:
            raise AdapterNotLoaded(f"adapter {version} is not loaded")
        self._free_blocking(version)

    def _already_loaded(self, ref: AdapterRef) -> bool:
        """Whether ``ref.version`` is loaded; :class:`AdapterError` when it is with other content
        (versions are never reused)."""
        if ref.version not in self._loaded:
            return False
        if self._sha256_of(self._loaded[ref.version]) != ref.sha256:
            raise AdapterError(f"adapter {ref.version} is loaded with other content; versions are never reused")
        return True

    def _sha256_of(self, kept: V) -> str:
        """The sha256 of a loaded adapter, from what is kept of it."""
        raise NotImplementedError

    def _load_blocking(self, ref: AdapterRef) -> None:
        raise NotImplementedError

    def _free_blocking(self, version: str) -> None:
        """Free the loaded adapter ``version`` and forget it."""
        raise NotImplementedError
