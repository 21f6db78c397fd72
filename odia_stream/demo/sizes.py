"""How big a run of the main job (``odia demo``) is: one place for its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The demo's traffic when no dataset is named: the built-in synthetic music app.
DEFAULT_DATASET = "synthetic:music"


@dataclass(frozen=True)
class DemoSizes:
    """How big a demo run is (the defaults finish in about 15 minutes on 2 CPU cores)."""

    events: int = 6000
    #: Held-out requests replayed in the latency phase: enough for stable latency ratios.
    held_out: int = 500
    #: Other held-out requests serving answers first, left out of the report's figures: serving in
    #: production has been answering for a while when anyone measures it, and it earns per-function
    #: trust on that traffic (probes of the small model, docs/serving_policy.md). 0 = none.
    warmup: int = 400
    #: The round's length, measured on the demo's own training set (synthetic music, 755 rows, 85
    #: held out; transformers, batch 4, 2-core CPU, prompt format 2, 2026-12-07): 32 steps at 2e-3
    #: (the default while a step took ~12.5 s) reached held-out AST accuracy 0.506, 128 steps at
    #: 1e-3 0.824 in ~5-8 minutes (real argument names instead of aliases: 0.812).
    train_steps: int = 128
    train_learning_rate: float = 1e-3
    train_minutes: float = 15.0
    #: Requests per second in phase 2. Even at 1/s the transformers backend on 2 CPU cores could
    #: not keep up (measured: small answers at p50 11.7 s, many over the budget below); with the
    #: small path's admission policy (hedging, the latency gate) serving no longer queues behind it.
    request_rate: float = 4.0
    trigger_examples: int = 300
    timeout_s: float = 1500.0
    #: The trainer's promotion gate (held-out AST accuracy) for the demo's round. A 15-minute CPU
    #: round does not come near the production default (0.9); this low gate lets the demo show
    #: the rest of the loop (promotion, hot swap, small-model serving), and the report shows what
    #: such an adapter costs in accuracy. Never use a gate like this in production.
    gate: float = 0.2
    #: The per-function trust the paired router gives the adapter (``trainer.function_accuracy_target``):
    #: the production default, so the small model is sent only functions it answered well on the
    #: demo's held-out records (the template tier answers the others without it).
    function_trust: float = 0.9
    train_batch_size: int = 4
    #: The router's calibration target. The synthetic large model answers ~3% of requests with
    #: another plausible function (on purpose), so no router can agree with it 99% of the time:
    #: the production default (0.99) would route nothing on this traffic.
    router_precision: float = 0.95
    #: Serving's budget for a small-model answer. On a 2-core CPU the transformers backend takes
    #: seconds per call, so the production default (1.5 s, a GPU figure) would escalate every one.
    small_latency_budget_ms: float = 20_000.0
    #: The serving policy a user deploys: small generations hedged with the large call, and the latency
    #: gate sending small-routed requests large while the small path is not faster (no request slower
    #: than the large model alone). Tests of the report's small-model figures turn both off.
    hedge: bool = True
    latency_gate: Literal["latency", "cost"] = "latency"
