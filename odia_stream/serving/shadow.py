"""Shadow checks: a share of small-model answers is also asked of the large model, off the critical path.

Sampling is a pure function of ``(seed, request_id)`` (reproducible, and the same on every
replica). A sampled answer is checked in a background task, at most ``max_concurrency`` at once:
when all are busy the check is skipped and counted, never queued, so shadow traffic cannot grow
without bound or delay answers. The large model's call is the reference (AST match, like the
trainer's evaluation gate); the outcome is recorded per cluster here and fed to the router that
made the decision (``record_agreement``), whose per-cluster error budget demotes a cluster to the
large model when its agreement drops.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from odia_stream.evaluation import ast_match
from odia_stream.large_model.protocol import LargeModel
from odia_stream.serving.background import BackgroundTasks
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.router_api import RouterLike
from schemas import FunctionCall, ServeRequest

__all__ = ["AgreementStats", "ShadowChecker", "ShadowSampler", "agrees_with_large"]

log = logging.getLogger(__name__)


def agrees_with_large(call: FunctionCall, large_call: FunctionCall | None, request: ServeRequest) -> bool:
    """Whether ``call`` matches the large model's ``large_call`` on ``request`` (AST match, like the
    trainer's evaluation; arguments compared by the offered function's schema)."""
    tool = None
    if large_call is not None:
        tool = next((t.function for t in request.tools if t.name == large_call.name), None)
    return ast_match(call, large_call, tool).ok


class ShadowSampler:
    """Decides, from ``(seed, request_id)`` alone, whether a request is shadow-checked."""

    def __init__(self, share: float, seed: int = 0) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"shadow share must be within [0, 1], got {share}")
        self.share = share
        self.seed = seed

    def sampled(self, request_id: str) -> bool:
        """Whether ``request_id`` is in the sampled share."""
        if self.share <= 0.0:
            return False
        if self.share >= 1.0:
            return True
        digest = hashlib.sha256(f"{self.seed}\x1f{request_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.share


@dataclass
class AgreementStats:
    """Shadow checks of one cluster: how many, and how many agreed."""

    checks: int = 0
    agreed: int = 0

    @property
    def rate(self) -> float:
        """Agreed / checks (``nan`` before the first check)."""
        return self.agreed / self.checks if self.checks else float("nan")


class ShadowChecker(BackgroundTasks):
    """Runs sampled shadow checks in the background and feeds their outcome back."""

    def __init__(
        self,
        large_model: LargeModel,
        sampler: ShadowSampler,
        *,
        max_concurrency: int,
        metrics: ServingMetrics | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("shadow max_concurrency must be >= 1")
        self.large_model = large_model
        self.sampler = sampler
        self.max_concurrency = max_concurrency
        self.metrics = metrics
        super().__init__()
        #: Per-cluster agreement seen by this replica (key ``None``: decisions without a cluster).
        self.by_cluster: dict[Hashable | None, AgreementStats] = {}
        self.skipped = 0
        self.errors = 0

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.shadow_checks.labels(outcome).inc()

    def submit(
        self,
        request: ServeRequest,
        small_call: FunctionCall,
        cluster_id: Hashable | None,
        router: RouterLike | None,
        listener: Callable[[bool], None] | None = None,
    ) -> bool:
        """Start a shadow check of ``small_call`` when ``request`` is sampled and a slot is free
        (``listener``, if given, also hears whether it agreed).

        Returns whether a check was started. Never blocks.
        """
        if not self.sampler.sampled(request.request_id):
            return False
        if len(self._tasks) >= self.max_concurrency:
            self.skipped += 1
            self._count("skipped")
            return False
        self._start(self._check(request, small_call, cluster_id, router, listener), f"shadow-{request.request_id}")
        return True

    async def _check(
        self,
        request: ServeRequest,
        small_call: FunctionCall,
        cluster_id: Hashable | None,
        router: RouterLike | None,
        listener: Callable[[bool], None] | None,
    ) -> None:
        try:
            answer = await self.large_model.call(request)
        except Exception as exc:  # the shadow path must never disturb serving
            self.errors += 1
            self._count("error")
            log.warning("shadow check of %s failed: %s", request.request_id, exc)
            return
        agreed = agrees_with_large(small_call, answer.call, request)
        self.record(cluster_id, agreed, router)
        if listener is not None:
            listener(agreed)

    def record(self, cluster_id: Hashable | None, agreed: bool, router: RouterLike | None) -> None:
        """Count one agreement outcome and feed it to ``router`` (when the decision had a cluster)."""
        stats = self.by_cluster.setdefault(cluster_id, AgreementStats())
        stats.checks += 1
        stats.agreed += int(agreed)
        self._count("agree" if agreed else "disagree")
        if router is not None and cluster_id is not None:
            router.record_agreement(cluster_id, agreed)
