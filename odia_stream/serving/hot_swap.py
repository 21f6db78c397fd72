"""Hot swap: follow ``ModelUpdate``s without dropping or mixing a request.

:meth:`HotSwapper.apply` loads the update's adapter beside the serving one (the backend verifies
its sha256 against the update), loads the router snapshot the update names, warms the adapter up
with a few generations (prompts of recent traffic, else a fixed one; not when it already serves and only the router is new), then switches the serving
pair with one reference assignment (:class:`~odia_stream.serving.versions.VersionHolder`).
Requests that started before keep their pair to the end; the old adapter is unloaded once they
have drained. Any failure keeps the serving pair and is reported in the returned
:class:`SwapOutcome` and in the metrics. Rollback is an older ``ModelUpdate`` applied the same way.

A :class:`~schemas.RouterUpdate` switches to its router with no adapter (the template tier answers
what the router sends small; the rest goes large) and unloads the serving adapter once drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from odia_stream.adapters.registry import UnsupportedRegistryURI, path_from_uri
from odia_stream.generation.calls import request_for
from odia_stream.generation.protocol import AdapterBaseMismatch, AdapterRef, SmallGenerator
from odia_stream.prompting import PromptOptions, RenderedPrompt, prompt_format_version, render_prompt
from odia_stream.serving.coalescing import CoalescingGenerator
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.router_api import RouterLike, RouterLoader
from odia_stream.serving.versions import ActiveVersion, VersionHolder
from schemas import ModelUpdate, RouterUpdate, ToolSpec

__all__ = ["HotSwapper", "SwapOutcome", "SwapStatus", "fixed_warmup_prompt"]

log = logging.getLogger(__name__)

SwapStatus = Literal["swapped", "unchanged", "ignored", "failed"]


@dataclass(frozen=True)
class SwapOutcome:
    """What applying one ``ModelUpdate`` did.

    ``swapped``: the update serves now; ``unchanged``: it already did; ``ignored``: not for this
    generator (trained on another base model: the backend refuses it); ``failed``: the serving pair was kept (``reason`` says why).
    ``version`` is the update's adapter (``None`` for a :class:`~schemas.RouterUpdate`).
    """

    status: SwapStatus
    version: str | None
    previous: str | None
    reason: str
    router_version: str | None = None
    load_ms: float = 0.0
    warmup_ms: float = 0.0
    total_ms: float = 0.0
    #: ``time.time()`` of the switch (``None`` unless swapped).
    switched_at: float | None = None


def fixed_warmup_prompt(options: PromptOptions) -> RenderedPrompt:
    """A prompt in the serving format for warming up an adapter before any traffic was seen."""
    tool = ToolSpec.model_validate(
        {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    )
    return render_prompt([tool], [], "What's the weather in Paris?", options, tool.name)


class HotSwapper:
    """Applies ``ModelUpdate``s to a generator and a :class:`VersionHolder`, one at a time."""

    def __init__(
        self,
        generator: SmallGenerator,
        versions: VersionHolder,
        *,
        prompt_options: PromptOptions,
        router_loader: RouterLoader | None = None,
        metrics: ServingMetrics | None = None,
        warmup_requests: int = 3,
        warmup_prompts: Callable[[], Sequence[RenderedPrompt]] | None = None,
        max_new_tokens: int | None = None,
        drain_timeout_s: float = 30.0,
    ) -> None:
        self.generator = generator
        self.versions = versions
        self.prompt_options = prompt_options
        self.router_loader = router_loader
        self.metrics = metrics or ServingMetrics()
        self.warmup_requests = warmup_requests
        self.warmup_prompts = warmup_prompts
        self.max_new_tokens = max_new_tokens
        self.drain_timeout_s = drain_timeout_s
        self._lock = asyncio.Lock()
        self._unloads: set[asyncio.Task[None]] = set()
        #: Every outcome, oldest first.
        self.outcomes: list[SwapOutcome] = []

    async def apply(self, update: ModelUpdate | RouterUpdate) -> SwapOutcome:
        """Load, verify, warm up and switch to ``update`` (see the module docstring); never raises for a bad update."""
        async with self._lock:
            if isinstance(update, RouterUpdate):
                outcome = await self._apply_router_only(update, time.perf_counter())
            else:
                outcome = await self._apply(update, time.perf_counter())
        self.outcomes.append(outcome)
        self.metrics.swaps.labels(outcome.status).inc()
        if outcome.status == "swapped":
            self.metrics.swap_seconds.observe(outcome.total_ms / 1000.0)
            log.info(
                "swapped to %s (router %s) in %.0f ms (load %.0f, warm-up %.0f); previous %s",
                outcome.version or "no adapter",
                outcome.router_version,
                outcome.total_ms,
                outcome.load_ms,
                outcome.warmup_ms,
                outcome.previous,
            )
        elif outcome.status == "failed":
            log.error(
                "update %s not applied, still serving %s: %s",
                outcome.version,
                outcome.previous,
                outcome.reason,
            )
        else:
            log.info("update %s %s: %s", outcome.version, outcome.status, outcome.reason)
        return outcome

    async def _apply(self, update: ModelUpdate, started: float) -> SwapOutcome:
        current = self.versions.current
        previous = current.adapter_version

        def outcome(status: SwapStatus, reason: str, **extra: float | str | None) -> SwapOutcome:
            return SwapOutcome(
                status,
                update.version,
                previous,
                reason,
                total_ms=(time.perf_counter() - started) * 1000.0,
                **extra,
            )  # type: ignore[arg-type]

        if previous == update.version and (
            update.router_version is None or current.router_version == update.router_version
        ):
            return outcome("unchanged", "already serving this version")
        expected = prompt_format_version(self.prompt_options)
        if update.prompt_format != expected:
            return outcome(
                "failed",
                f"adapter {update.version} was trained on prompt format {update.prompt_format}, and this "
                f"serving renders format {expected} (ODIA_PROMPT__FUNCTION_GIVEN={self.prompt_options.function_given}, "
                f"ODIA_PROMPT__ALIAS_ARGUMENTS={self.prompt_options.alias_arguments}): a model "
                "would be asked in a format it never saw; train it again with these settings",
            )
        try:
            path = path_from_uri(update.adapter_uri)
        except UnsupportedRegistryURI as exc:
            return outcome("failed", str(exc))
        if not Path(path).is_dir():
            return outcome("failed", f"adapter folder {path} does not exist")
        try:
            ref = AdapterRef(update.version, Path(path), update.sha256, update.base_model)
        except ValueError as exc:
            return outcome("failed", f"bad adapter reference: {exc}")
        try:
            router = await self._router_for(update, current)
        except Exception as exc:
            return outcome(
                "failed", f"router {update.router_version} could not be loaded: {type(exc).__name__}: {exc}"
            )
        await self._finish_unloads()
        load_started = time.perf_counter()
        newly_loaded = ref.version not in self.generator.loaded_versions()
        try:
            await self.generator.load_adapter(ref)
        except AdapterBaseMismatch as exc:
            return outcome("ignored", f"not for this generator: {exc}")
        except Exception as exc:
            return outcome("failed", f"adapter could not be loaded: {type(exc).__name__}: {exc}")
        load_ms = (time.perf_counter() - load_started) * 1000.0
        warm_started = time.perf_counter()
        try:
            if ref.version != current.adapter_version:  # the serving adapter sent with a new router is warm
                await self._warm_up(ref)
        except Exception as exc:
            if newly_loaded and ref.version != self.versions.current.adapter_version:
                with contextlib.suppress(Exception):
                    await self.generator.unload_adapter(ref.version)
            return outcome(
                "failed",
                f"warm-up failed: {type(exc).__name__}: {exc}",
                load_ms=load_ms,
            )
        warmup_ms = (time.perf_counter() - warm_started) * 1000.0
        new = ActiveVersion(adapter=ref, router=router, update=update)
        old = self.versions.switch(new)
        switched_at = time.time()
        self.metrics.set_version(new.adapter_version, new.router_version)
        if old.adapter_version is not None and old.adapter_version != ref.version:
            self._schedule_unload(old.adapter_version)
        return outcome(
            "swapped",
            "switched"
            if router is not None
            else "switched (no router: requests go large until one is published)",
            router_version=new.router_version,
            load_ms=load_ms,
            warmup_ms=warmup_ms,
            switched_at=switched_at,
        )

    async def _apply_router_only(self, update: RouterUpdate, started: float) -> SwapOutcome:
        """Serve ``update``'s router with no adapter; the serving adapter is unloaded once drained."""
        current = self.versions.current
        previous = current.adapter_version

        def outcome(status: SwapStatus, reason: str, **extra: float | str | None) -> SwapOutcome:
            return SwapOutcome(status, None, previous, reason, router_version=update.router_version,
                               total_ms=(time.perf_counter() - started) * 1000.0, **extra)  # type: ignore[arg-type]

        if previous is None and current.router_version == update.router_version:
            return outcome("unchanged", "already serving this router with no adapter")
        try:
            router = await self._router_for(update, current)
        except Exception as exc:
            return outcome(
                "failed", f"router {update.router_version} could not be loaded: {type(exc).__name__}: {exc}"
            )
        self.versions.switch(ActiveVersion(adapter=None, router=router, update=update))
        switched_at = time.time()
        self.metrics.set_version(None, update.router_version)
        if previous is not None:
            self._schedule_unload(previous)
        return outcome(
            "swapped",
            "switched to a router with no adapter: the template tier answers what it routes small, the large "
            f"model the rest ({update.reason or 'no reason given'})",
            switched_at=switched_at,
        )

    async def _router_for(self, update: ModelUpdate | RouterUpdate, current: ActiveVersion) -> RouterLike | None:
        """The router paired with ``update``: its snapshot, or the serving router when it names none."""
        if update.router_version is None:
            if current.router is not None:
                log.warning(
                    "update %s names no router version; keeping router %s",
                    update.version,
                    current.router_version,
                )
            return current.router
        if current.router is not None and current.router_version == update.router_version:
            return current.router
        if self.router_loader is None:
            raise RuntimeError("no router loader is configured")
        loader = self.router_loader
        return await asyncio.to_thread(loader, update.router_version)

    async def _warm_up(self, ref: AdapterRef) -> None:
        if self.warmup_requests <= 0:
            return
        prompts = list(self.warmup_prompts() if self.warmup_prompts is not None else ())[
            -self.warmup_requests :
        ]
        if not prompts:
            prompts = [fixed_warmup_prompt(self.prompt_options)]
        prompts = (prompts * self.warmup_requests)[: self.warmup_requests]
        requests = [request_for(p, ref, self.max_new_tokens) for p in prompts]
        if isinstance(self.generator, CoalescingGenerator):  # jump the queue: a backlog must not delay a swap
            results = await self.generator.generate_first(requests)
        else:
            results = await self.generator.generate(requests)
        wrong = [r.adapter_version for r in results if r.adapter_version != ref.version]
        if wrong:
            raise RuntimeError(f"warm-up generations came from adapter(s) {wrong}, not {ref.version}")

    def _schedule_unload(self, version: str) -> None:
        task = asyncio.get_running_loop().create_task(
            self._unload_when_drained(version), name=f"unload-{version}"
        )
        self._unloads.add(task)
        task.add_done_callback(self._unloads.discard)

    async def _unload_when_drained(self, version: str) -> None:
        # Never unload under a running request: each is bounded by the latency budget and the large
        # model's timeout, so the wait ends; a slow drain is logged every ``drain_timeout_s``.
        waited = 0.0
        while not await self.versions.wait_drained(version, self.drain_timeout_s):
            waited += self.drain_timeout_s
            log.warning(
                "adapter %s still has %d request(s) after %.0f s; it is unloaded when they finish",
                version,
                self.versions.in_flight(version),
                waited,
            )
        if (
            version == self.versions.current.adapter_version
            or version not in self.generator.loaded_versions()
        ):
            return
        try:
            await self.generator.unload_adapter(version)
            log.info("unloaded adapter %s", version)
        except Exception as exc:
            log.warning("could not unload adapter %s: %s", version, exc)

    async def _finish_unloads(self) -> None:
        if self._unloads:
            await asyncio.gather(*list(self._unloads), return_exceptions=True)

    async def aclose(self) -> None:
        """Wait for pending unloads."""
        await self._finish_unloads()
