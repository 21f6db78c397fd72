"""Everything serving runs on, wired together: generator, large model, versions, engine, swapper, shadow."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from odia_stream.generation.protocol import SmallGenerator
from odia_stream.large_model.protocol import LargeModel
from odia_stream.serving.engine import ServeEngine
from odia_stream.serving.hot_swap import HotSwapper
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.router_api import RouterLoader
from odia_stream.serving.shadow import ShadowChecker, ShadowSampler
from odia_stream.serving.small_path import small_path_limits
from odia_stream.serving.versions import VersionHolder
from odia_stream.settings import OdiaSettings

__all__ = ["ServingRuntime", "build_runtime"]

log = logging.getLogger(__name__)


@dataclass
class ServingRuntime:
    """The serving domain objects of one process."""

    settings: OdiaSettings
    generator: SmallGenerator
    large_model: LargeModel
    versions: VersionHolder
    metrics: ServingMetrics
    shadow: ShadowChecker
    engine: ServeEngine
    swapper: HotSwapper

    async def aclose(self, *, close_generator: bool = True, close_large_model: bool = True) -> None:
        """Wait for shadow checks and trust probes (bounded by ``serving.drain_timeout_s``) and unloads, then release models."""
        for checks, what in ((self.shadow, "shadow checks"), (self.engine.prober, "trust probes")):
            if not await checks.drain(self.settings.serving.drain_timeout_s):
                log.warning("%s still running at shutdown; cancelling them", what)
            await checks.aclose()
        await self.swapper.aclose()
        if close_large_model:
            await self.large_model.aclose()
        if close_generator:
            await self.generator.aclose()


def build_runtime(
    settings: OdiaSettings,
    *,
    generator: SmallGenerator,
    large_model: LargeModel,
    router_loader: RouterLoader | None,
    metrics: ServingMetrics | None = None,
    backend: str | None = None,
) -> ServingRuntime:
    """Wire the serving objects for ``settings`` around a started generator and a large model
    (``backend``, the generator's engine, sizes the small path unless the settings do)."""
    s = settings.serving
    metrics = metrics or ServingMetrics()
    versions = VersionHolder()
    metrics.set_version(None, None)
    shadow = ShadowChecker(
        large_model,
        ShadowSampler(s.shadow_share, s.shadow_seed),
        max_concurrency=s.shadow_max_concurrency,
        metrics=metrics,
    )
    engine = ServeEngine(
        settings,
        generator=generator,
        large_model=large_model,
        versions=versions,
        metrics=metrics,
        shadow=shadow,
        small_limits=small_path_limits(settings, backend),
    )
    swapper = HotSwapper(
        generator,
        versions,
        prompt_options=settings.prompt,
        router_loader=router_loader,
        metrics=metrics,
        warmup_requests=s.warmup_requests,
        warmup_prompts=lambda: list(engine.recent_prompts),
        max_new_tokens=settings.small_answer_tokens,
        drain_timeout_s=s.drain_timeout_s,
    )
    return ServingRuntime(settings, generator, large_model, versions, metrics, shadow, engine, swapper)
