"""The small path's admission policy: its own capacity, rolling latency estimates, the latency gate
and the hedge delay.

The promise to a user is that turning odia-stream on never makes a request slower than the large
model alone would have been. Three rules keep it by construction (the engine applies them):

* **Separate capacity** (:class:`SmallPathCapacity`): the small path runs at most ``concurrency``
  generations and lets at most ``queue`` more wait; a request routed small when the path is full
  goes to the large model at once (route reason ``small_busy``). Large-routed requests never
  wait for small-model capacity.
* **Latency gate** (:class:`LatencyGate`): rolling medians of the small path's latency (per prompt
  size class) and of the large model's; while the small path is not faster than ``ratio`` × the
  large model, small-routed requests go large (``small_not_faster``), except a share of probes
  that keep the small path's estimate fresh, so routing resumes when it is faster again. The
  ``cost`` mode keeps small routing regardless.
* **Hedging** (:meth:`LatencyGate.hedge_delay_s`): when the small model has not answered within
  the hedge delay (its own recent p90, capped by a setting), the engine starts the large call
  beside it; the first valid answer wins. Until the small path has been measured, and for the
  probes of a closed gate, the delay is 0: both calls start together, so a request is never
  slower for being the one that measures the small path (it costs a large call instead).

Pure logic, no Kafka; used from one event loop.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np

from odia_stream.settings import OdiaSettings

__all__ = [
    "HEDGED",
    "POLICY_REASONS",
    "SMALL_BUSY",
    "SMALL_NOT_FASTER",
    "GateDecision",
    "LatencyGate",
    "LatencyWindow",
    "SmallPathCapacity",
    "size_class",
    "LLAMACPP_QUEUE",
    "small_path_limits",
]

#: Route reason: routed small; the large call started after the hedge delay answered first.
HEDGED = "hedged"
#: Route reason: routed small, but the small path's generations and queue were full.
SMALL_BUSY = "small_busy"
#: Route reason: routed small, but the small path is not faster than the large model now.
SMALL_NOT_FASTER = "small_not_faster"
#: The route reasons of small-routed requests this policy sent to the large model.
POLICY_REASONS = (HEDGED, SMALL_BUSY, SMALL_NOT_FASTER)


#: Requests that may wait for llama.cpp's one generation slot by default: each takes a few hundred
#: milliseconds on a CPU, so a short queue is still well under the large model's latency.
LLAMACPP_QUEUE = 3


def small_path_limits(settings: OdiaSettings, backend: str | None = None) -> tuple[int, int]:
    """``(concurrency, queue)`` of the small path: the settings' values, else sized to the engine
    (transformers: one batch of ``generator.max_batch_size``; vLLM and a vLLM server: its
    ``max_num_seqs``; both with a queue of one more such batch; llama.cpp: one generation at a
    time, :data:`LLAMACPP_QUEUE` waiting)."""
    s = settings.serving
    engine = backend or s.backend
    if engine == "auto":
        from odia_stream.serving.backends import resolve_backend

        engine = resolve_backend(engine)
    if engine == "llamacpp":
        default, default_queue = 1, LLAMACPP_QUEUE
    else:
        default = settings.vllm.max_num_seqs if engine in ("vllm", "http") else settings.generator.max_batch_size
        default_queue = s.small_max_concurrency or default
    concurrency = s.small_max_concurrency or default
    queue = default_queue if s.small_max_queue is None else s.small_max_queue
    return concurrency, queue


class SmallPathCapacity:
    """At most ``concurrency`` small-path generations at once and ``queue`` more waiting.

    :meth:`try_admit` reserves a place synchronously (``False``: full, go large); the admitted
    request then runs inside :meth:`running`, which waits for a generation slot and gives the place
    back when it leaves (finished, failed or cancelled)."""

    def __init__(self, concurrency: int, queue: int) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("concurrency must be >= 1 and queue >= 0")
        self.concurrency = concurrency
        self.queue = queue
        self.admitted = 0
        self._slots: asyncio.Semaphore | None = None

    @property
    def full(self) -> bool:
        """Whether a request would be turned away now."""
        return self.admitted >= self.concurrency + self.queue

    def try_admit(self) -> bool:
        """Reserve a place for one request; ``False`` when the path is full."""
        if self.full:
            return False
        self.admitted += 1
        return True

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Hold a generation slot for an admitted request; the place is given back on exit."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                yield
        finally:
            self.admitted -= 1


class LatencyWindow:
    """The last ``size`` latencies (ms) of one kind of call."""

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        #: Quantiles asked since the last :meth:`add` (every request asks; latencies come slower).
        self._quantiles: dict[float, float] = {}

    def add(self, ms: float) -> None:
        """Record one latency."""
        self._values.append(float(ms))
        self._quantiles.clear()

    def __len__(self) -> int:
        return len(self._values)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the window (``None`` while empty).

        >>> w = LatencyWindow(3)
        >>> w.quantile(0.5) is None
        True
        >>> for ms in (10, 30, 20, 40): w.add(ms)
        >>> w.quantile(0.5), w.quantile(1.0)
        (30.0, 40.0)
        """
        if not self._values:
            return None
        got = self._quantiles.get(q)
        if got is None:
            got = self._quantiles[q] = float(np.quantile(np.fromiter(self._values, dtype=float), q))
        return got


def size_class(prompt_chars: int) -> int:
    """A prompt's size class: 0 up to 1,024 characters, then one class per doubling.

    >>> [size_class(n) for n in (10, 1024, 1025, 4096, 5000)]
    [0, 0, 1, 2, 3]
    """
    return max(0, math.ceil(math.log2(max(prompt_chars, 1) / 1024)))


@dataclass(frozen=True)
class GateDecision:
    """Whether a small-routed request may use the small path, and the estimates behind it."""

    small_ok: bool
    #: The request goes small only to measure the small path (the gate is closed).
    probe: bool
    small_p50_ms: float | None
    large_p50_ms: float | None


class LatencyGate:
    """Rolling latency estimates of the small path and the large model, the gate between them and
    the hedge delay (see the module docstring)."""

    def __init__(self, settings: OdiaSettings) -> None:
        s = settings.serving
        self.mode = s.latency_gate
        self.ratio = s.small_faster_ratio
        self.min_samples = s.latency_min_samples
        self.probe_every = max(1, round(1 / s.gate_probe_share)) if s.gate_probe_share > 0 else 0
        self.hedge_enabled = s.hedge
        self.hedge_quantile = s.hedge_quantile
        self.hedge_max_s = s.hedge_max_delay_ms / 1000.0
        self._window = s.latency_window
        self.small: dict[int, LatencyWindow] = {}
        self.small_all = LatencyWindow(s.latency_window)
        self.large = LatencyWindow(s.latency_window)
        self._closed_seen = 0
        #: Whether the last decision found the small path fast enough (for metrics).
        self.open = True

    def observe_small(self, ms: float, prompt_chars: int) -> None:
        """Record one small-path attempt's latency (admission to answer, failure or abandonment)."""
        self.small.setdefault(size_class(prompt_chars), LatencyWindow(self._window)).add(ms)
        self.small_all.add(ms)

    def observe_large(self, ms: float) -> None:
        """Record one large-model call's latency."""
        self.large.add(ms)

    def small_estimate(self, prompt_chars: int) -> float | None:
        """Median small-path latency for a prompt of this size (its size class once it has enough
        samples, else every size), ``None`` before ``min_samples``."""
        window = self.small.get(size_class(prompt_chars))
        if window is not None and len(window) >= self.min_samples:
            return window.quantile(0.5)
        return self.small_all.quantile(0.5) if len(self.small_all) >= self.min_samples else None

    def large_estimate(self) -> float | None:
        """Median large-model latency, ``None`` before ``min_samples``."""
        return self.large.quantile(0.5) if len(self.large) >= self.min_samples else None

    def decide(self, prompt_chars: int) -> GateDecision:
        """May a small-routed request of this prompt size use the small path now?"""
        small, large = self.small_estimate(prompt_chars), self.large_estimate()
        faster = self.mode == "cost" or small is None or large is None or small <= self.ratio * large
        self.open = faster
        if faster:
            return GateDecision(True, False, small, large)
        self._closed_seen += 1
        probe = self.probe_every > 0 and self._closed_seen % self.probe_every == 0
        return GateDecision(probe, probe, small, large)

    def hedge_delay_s(self, probe: bool = False) -> float | None:
        """Seconds to wait for the small model before starting the large call beside it: the small
        path's recent ``hedge_quantile`` latency, capped by ``hedge_max_delay_ms``; 0 (start both at
        once) while there are fewer than ``latency_min_samples`` small-path latencies and for a
        ``probe`` of the closed gate, since nothing says the small model will be faster then;
        ``None`` when hedging is off.

        An abandoned small call is still measured (up to the large model's answer): censored there,
        it keeps the gate closed while the small path is slower, and a faster small path shows by
        winning the race.
        """
        if not self.hedge_enabled:
            return None
        if probe or len(self.small_all) < self.min_samples:
            return 0.0
        q = self.small_all.quantile(self.hedge_quantile)
        assert q is not None
        return min(q / 1000.0, self.hedge_max_s)
