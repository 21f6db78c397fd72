"""Coalesce concurrent single-request generations into batches, for backends that batch per call.

The transformers backend generates one batch at a time on one thread; when every request calls
``generate([one])`` the requests queue behind each other unbatched. :class:`CoalescingGenerator`
queues them instead and, each time the backend is free, sends everything waiting (up to
``max_batch_size``) as one batch: no added wait at low load, batches under load. A request whose
caller gave up (a latency-budget timeout) before its batch started is dropped from the queue.
vLLM batches continuously by itself and is used directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from odia_stream.generation.protocol import AdapterRef, GenerationRequest, GenerationResult, SmallGenerator

__all__ = ["CoalescingGenerator"]

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future[GenerationResult]


class CoalescingGenerator:
    """A :class:`~odia_stream.generation.protocol.SmallGenerator` that batches concurrent callers."""

    def __init__(self, inner: SmallGenerator, max_batch_size: int) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.inner = inner
        self.max_batch_size = max_batch_size
        self._queue: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        #: Sizes of the batches sent to the backend (for benchmarks).
        self.batch_sizes: list[int] = []

    @property
    def base_model(self) -> str:
        """The inner backend's base model."""
        return self.inner.base_model

    @property
    def enforces_json_schema(self) -> bool:
        """Whether the inner backend enforces the output schema."""
        return self.inner.enforces_json_schema

    def _ensure_worker(self) -> asyncio.Event:
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="coalescing-generator")
        assert self._wake is not None
        return self._wake

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Queue ``requests`` for the next batch; results in request order."""
        return await self._enqueue(requests, first=False)

    async def generate_first(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Like :meth:`generate`, but ahead of everything queued (hot-swap warm-up under load)."""
        return await self._enqueue(requests, first=True)

    async def _enqueue(self, requests: Sequence[GenerationRequest], *, first: bool) -> list[GenerationResult]:
        wake = self._ensure_worker()
        loop = asyncio.get_running_loop()
        pending = [_Pending(r, loop.create_future()) for r in requests]
        self._queue = pending + self._queue if first else self._queue + pending
        wake.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except BaseException:
            for p in pending:
                p.future.cancel()
            raise

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                live = [p for p in self._queue if not p.future.done()]
                batch, rest = live[: self.max_batch_size], live[self.max_batch_size :]
                self._queue = rest
                if batch:
                    await self._generate(batch)

    async def _generate(self, batch: list[_Pending]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = await self.inner.generate([p.request for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            # One bad request must not fail the others: retry them one by one.
            log.warning("batch of %d failed (%s); generating its requests one by one", len(batch), exc)
            for p in batch:
                if not p.future.done():
                    await self._generate([p])
            return
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Load an adapter into the inner backend."""
        await self.inner.load_adapter(ref)

    async def unload_adapter(self, version: str) -> None:
        """Unload an adapter from the inner backend."""
        await self.inner.unload_adapter(version)

    def loaded_versions(self) -> list[str]:
        """The inner backend's loaded adapter versions."""
        return self.inner.loaded_versions()

    async def aclose(self) -> None:
        """Stop batching (queued requests fail with ``CancelledError``) and close the inner backend."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for p in self._queue:
            p.future.cancel()
        self._queue.clear()
        await self.inner.aclose()
