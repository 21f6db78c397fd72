"""Trust earned in serving: the small model probed, off the critical path, on functions it is not yet trusted with.

The trainer trusts an adapter per function from its held-out records (``trainer.function_accuracy_target``
at ``router.calibration_z``). A held-out set is small per function: at the defaults (0.9, z = 1.645)
even a perfect score needs 25 records to prove the target, and a function with fewer held-out records
can never be trusted however well the adapter answers it. Production traffic holds far more evidence,
and of the right kind: the requests the router actually sends that function.

So when a request routed small goes large because its function is not trusted, and the small path
is idle, serving also asks the small model (a *probe*, in the background: the large answer is sent
as it is, and no request waits for a probe). The probe's call is compared with the large model's
(AST match, like the trainer's evaluation and the shadow checks). :class:`EarnedTrust` counts the
outcomes per adapter version and function; once their Wilson lower bound reaches the same target,
requests of that function go to the small model. Shadow checks of those small answers feed the
same counts, so trust that stops being deserved is lost again.

Probes only take an idle small path (no generation running or waiting): real traffic never waits
behind one for longer than a single probe generation, and the hedge covers that. Each serving
replica earns its own trust (nothing is shared between replicas or kept across restarts), and a new
adapter version starts from the trainer's trust alone.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from odia_stream.generation.calls import call_from, request_for
from odia_stream.generation.protocol import AdapterRef, SmallGenerator
from odia_stream.prompting import RenderedPrompt
from odia_stream.serving.background import BackgroundTasks
from odia_stream.serving.metrics import ServingMetrics
from odia_stream.serving.shadow import AgreementStats, ShadowSampler, agrees_with_large
from odia_stream.serving.small_path import SmallPathCapacity
from odia_stream.stats import wilson_lower_bound
from schemas import FunctionCall, ServeRequest

__all__ = ["FUNCTION_TRUST_EARNED", "EarnedTrust", "TrustProber"]

log = logging.getLogger(__name__)

#: Route reason of a request routed small with a function the trainer did not trust the adapter with,
#: but serving's probes proved it: answered like any small-routed request.
FUNCTION_TRUST_EARNED = "function_trust_earned"


class EarnedTrust:
    """Per adapter version and function: probe and shadow outcomes, and whether they prove ``target``.

    >>> t = EarnedTrust(target=0.9, z=1.645)
    >>> for _ in range(24): t.record("v1", "play", True)
    >>> t.earned("v1", "play")
    False
    >>> t.record("v1", "play", True)
    >>> t.earned("v1", "play"), t.earned("v2", "play"), t.earned("v1", "stop")
    (True, False, False)
    >>> t.record("v1", "play", False); t.earned("v1", "play")  # one disagreement: 25/26 no longer proves 0.9
    False
    """

    def __init__(self, target: float, z: float, *, max_versions: int = 4) -> None:
        if not 0.0 <= target <= 1.0:
            raise ValueError(f"trust target must be within [0, 1], got {target}")
        self.target = target
        self.z = z
        self.max_versions = max_versions
        self._records: OrderedDict[str, dict[str, AgreementStats]] = OrderedDict()

    def record(self, adapter_version: str, function: str, agreed: bool) -> None:
        """Count one outcome (the oldest adapter versions are forgotten beyond ``max_versions``)."""
        by_function = self._records.setdefault(adapter_version, {})
        self._records.move_to_end(adapter_version)
        while len(self._records) > self.max_versions:
            self._records.popitem(last=False)
        rec = by_function.setdefault(function, AgreementStats())
        rec.checks += 1
        rec.agreed += int(agreed)

    def record_and_log(self, adapter_version: str, function: str, agreed: bool, source: str) -> None:
        """:meth:`record`, and a log line when the outcome earns or loses the function's trust."""
        before = self.earned(adapter_version, function)
        self.record(adapter_version, function, agreed)
        if self.earned(adapter_version, function) != before:
            rec = self.stats(adapter_version, function)
            log.info("adapter %s %s trust with %s in serving (%s: %d of %d agreed)", adapter_version,
                     "lost" if before else "earned", function, source, rec.agreed, rec.checks)

    def stats(self, adapter_version: str | None, function: str | None) -> AgreementStats:
        """The outcomes counted so far (zeros when none)."""
        if adapter_version is None or function is None:
            return AgreementStats()
        return self._records.get(adapter_version, {}).get(function, AgreementStats())

    def earned(self, adapter_version: str | None, function: str | None) -> bool:
        """Whether the outcomes of ``adapter_version`` on ``function`` prove the target."""
        rec = self.stats(adapter_version, function)
        return rec.checks > 0 and wilson_lower_bound(rec.agreed, rec.checks, self.z) >= self.target

    def functions(self, adapter_version: str | None) -> list[str]:
        """The functions ``adapter_version`` has earned trust with."""
        if adapter_version is None:
            return []
        return sorted(f for f in self._records.get(adapter_version, {}) if self.earned(adapter_version, f))


class TrustProber(BackgroundTasks):
    """Runs sampled probes of the small model in the background, on an idle small path only."""

    def __init__(
        self,
        generator: SmallGenerator,
        trust: EarnedTrust,
        capacity: SmallPathCapacity,
        sampler: ShadowSampler,
        *,
        max_new_tokens: int | None,
        check_required: bool,
        metrics: ServingMetrics | None = None,
        observe_latency: Callable[[float, int], None] | None = None,
    ) -> None:
        """``observe_latency(ms, prompt_chars)`` hears each probe's latency (the latency gate's small-path
        estimate: a probe is a real generation of real traffic)."""
        self.generator = generator
        self.trust = trust
        self.capacity = capacity
        self.sampler = sampler
        self.max_new_tokens = max_new_tokens
        self.check_required = check_required
        self.metrics = metrics
        self.observe_latency = observe_latency
        super().__init__()

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.trust_probes.labels(outcome).inc()

    def submit(
        self,
        request: ServeRequest,
        render: Callable[[], RenderedPrompt | None],
        adapter: AdapterRef,
        large_call: FunctionCall | None,
    ) -> bool:
        """Probe the small model on ``request`` against the large model's ``large_call``, when the
        request is sampled and the small path is idle; ``render()`` gives its prompt (its function
        given; ``None``: it cannot be rendered) and is called only then. Never blocks; returns whether
        a probe started."""
        if not self.sampler.sampled(request.request_id):
            return False
        if self.capacity.admitted > 0:
            self._count("skipped")
            return False
        prompt = render()
        if prompt is None or prompt.function is None:
            return False
        if not self.capacity.try_admit():
            self._count("skipped")
            return False
        self._start(self._probe(request, prompt, adapter, large_call), f"trust-probe-{request.request_id}")
        return True

    async def _probe(
        self, request: ServeRequest, prompt: RenderedPrompt, adapter: AdapterRef, large_call: FunctionCall | None
    ) -> None:
        assert prompt.function is not None
        try:
            async with self.capacity.running():
                started = time.perf_counter()
                (result,) = await self.generator.generate([request_for(prompt, adapter, self.max_new_tokens)])
            if self.observe_latency is not None:
                self.observe_latency((time.perf_counter() - started) * 1000.0, prompt.chars)
        except Exception as exc:  # a probe must never disturb serving
            self._count("error")
            log.warning("trust probe of %s failed: %s", request.request_id, exc)
            return
        if result.adapter_version != adapter.version:  # swapped meanwhile: not evidence about this version
            self._count("error")
            return
        checked = call_from(result, prompt, check_required=self.check_required)
        agreed = checked.error is None and checked.call is not None and agrees_with_large(checked.call, large_call, request)
        self._count("agree" if agreed else "disagree")
        self.trust.record_and_log(adapter.version, prompt.function, agreed, "probes")
