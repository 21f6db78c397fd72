"""``odia bench serve``: the serving consumer end to end on a real broker.

Setup (measured, not timed): a small app drawn from SNIPS (real queries and calls; the app offers
a few of SNIPS's functions with their argument names), split by query group into a learning part
and held-out requests; a learner fed with the learning part and a router snapshot built from it;
two LoRA adapters trained on it with the trainer's code (``train_lora``), registered, and paired
with their router snapshots; the large model is the simulated replay model (``ReplaySimulatedLargeModel``,
lognormal latency with the configured median / P90) over the same records.

Phase 1, routed: the serving consumer (the real one, in this process) answers the held-out requests
sent by a closed-loop client that keeps ``concurrency`` requests open; half-way the second adapter's
``ModelUpdate`` is published. Phase 2, baseline: the same requests with ``serving.mode = all_large``.
Figures: server-side latency p50/p90/p99 of requests served small, routed small (escalations
included), routed large, overall and the all-large baseline (with ratios), client end-to-end
latency, throughput at the fixed concurrency, swap time from publishing the ``ModelUpdate`` to the
first response from the new version, and requests failed during the swap (must be 0). Writes
``serve.json`` and ``serve_latency.png`` (latency CDFs).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from kafka_runtime.clients import TopicReader, make_producer
from kafka_runtime.publishing import produce_model, publish_model
from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.datasets import group_of, load_dataset
from odia_stream.figures import save_figure
from odia_stream.generation.base_model import base_model_id, ensure_base_model
from odia_stream.generation.protocol import SmallGenerator
from odia_stream.prompting import render_record
from odia_stream.settings import OdiaSettings, PromptSettings, TopicSettings, TrainerSettings
from odia_stream.training.lora import TrainingExample, train_lora
from schemas import FCLogEvent, ModelUpdate, ServeRequest, ServeResponse, ToolSpec

__all__ = [
    "BENCH_APP",
    "BENCH_FUNCTIONS",
    "ServeBenchConfig",
    "app_events",
    "build_router_snapshot",
    "percentiles",
    "run_serve_bench",
    "split_events",
    "train_adapter",
    "training_examples",
]

log = logging.getLogger(__name__)

#: SNIPS functions the bench app offers (few, so CPU prompts stay short).
BENCH_FUNCTIONS = ("GetWeather", "PlayMusic")
BENCH_APP = "serve-bench"


# -- the app ----------------------------------------------------------------------------------------


def _compact_tool(tool: ToolSpec) -> ToolSpec:
    params = tool.function.parameters
    props = {name: {"type": "string"} for name in params.get("properties", {})}
    return ToolSpec.model_validate(
        {
            "name": tool.name,
            "description": tool.name,
            "parameters": {
                "type": "object",
                "properties": props,
                "required": list(params.get("required", [])),
            },
        }
    )


def app_events(
    snips_dir: Path,
    per_function: int,
    *,
    functions: Sequence[str] = BENCH_FUNCTIONS,
    app: str = BENCH_APP,
    seed: int = 0,
) -> list[FCLogEvent]:
    """SNIPS records of ``functions``, each offered just those tools (argument names kept, descriptions cut).

    Real queries and calls; the short tool listing keeps prompts ~150 tokens for CPU generation.
    """
    by_fn: dict[str, list[FCLogEvent]] = {}
    tools: dict[str, ToolSpec] = {}
    for ev in load_dataset(snips_dir):
        if ev.call is None or ev.call.name not in functions:
            continue
        by_fn.setdefault(ev.call.name, []).append(ev)
        for t in ev.tools:
            if t.name in functions:
                tools.setdefault(t.name, _compact_tool(t))
    missing = [f for f in functions if f not in by_fn]
    if missing:
        raise ValueError(f"{snips_dir}: no records calling {missing}")
    offered = [tools[name] for name in functions]
    rng = random.Random(seed)
    out = [
        ev.model_copy(update={"tools": offered, "app": app, "history": []})
        for name in functions
        for ev in rng.sample(by_fn[name], min(per_function, len(by_fn[name])))
    ]
    rng.shuffle(out)
    return out


def split_events(
    events: Sequence[FCLogEvent], held_out_share: float, seed: int = 0
) -> tuple[list[FCLogEvent], list[FCLogEvent]]:
    """``(learn, held_out)`` split by query group (no query is in both)."""
    groups = sorted({group_of(e) for e in events})
    rng = random.Random(seed)
    held = set(rng.sample(groups, max(1, int(len(groups) * held_out_share))))
    return [e for e in events if group_of(e) not in held], [e for e in events if group_of(e) in held]


def training_examples(events: Sequence[FCLogEvent], options: PromptSettings) -> list[TrainingExample]:
    """Supervised examples in the serving prompt format (what the trainer trains on)."""
    out = []
    for ev in events:
        prompt, target = render_record(ev, options)
        out.append(TrainingExample(messages=prompt.messages, completion=target))
    return out


def train_adapter(
    base_dir: Path, examples: Sequence[TrainingExample], trainer: TrainerSettings, out_dir: Path
) -> Path:
    """Train a LoRA adapter with the trainer's code into ``out_dir`` (kept when it exists already)."""
    if not (out_dir / "adapter_config.json").is_file():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        train_lora(base_dir, list(examples), trainer, out_dir, progress=True)
    return out_dir


def build_router_snapshot(settings: OdiaSettings, events: Sequence[FCLogEvent], adapter_version: str) -> str:
    """Feed ``events`` to the learner under ``settings.state_dir`` (once) and write the router snapshot
    paired with ``adapter_version``; returns the router version."""
    from odia_stream.clustering import OffsetAlignedBatcher, SourcedItem
    from odia_stream.clustering.factory import open_embedder, open_learner
    from odia_stream.routing import publish_router

    embedder = open_embedder(settings)
    learner = open_learner(settings, embedder)
    try:
        if not learner.clusters:
            batcher: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(settings.clustering.batch_size)
            for i, ev in enumerate(events):
                for ready in batcher.add(SourcedItem("bench", 0, i, ev)):
                    learner.process_batch(ready)
            for ready in batcher.flush():
                learner.process_batch(ready)
        return publish_router(learner, settings, embedder, adapter_version=adapter_version).version
    finally:
        learner.close()


# -- figures ----------------------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float | int]:
    """``n``, p50, p90, p99 and mean of ``values`` (``nan`` when empty)."""
    if not values:
        return {"n": 0, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "mean": float("nan")}
    a = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
    }


@dataclass(frozen=True)
class ServeBenchConfig:
    """What ``odia bench serve`` measures (see the module docstring)."""

    backend: str = "auto"
    dataset: Path = Path("../shared/datasets/snips")
    requests: int = 64
    concurrency: int = 4
    train_steps: int = 6
    large_median_ms: float = 1600.0
    large_p90_ms: float = 2500.0
    budget_ms: float | None = None
    out_dir: Path = Path("reports/bench")
    per_function: int = 600
    seed: int = 0


@dataclass
class _Sent:
    request: ServeRequest
    sent_at: float
    received_at: float | None = None
    response: ServeResponse | None = None


@dataclass
class _PhaseResult:
    sent: list[_Sent]
    started: float
    finished: float
    swap_published_at: float | None = None
    swap_outcomes: list[dict[str, Any]] = field(default_factory=list)


def _phase_settings(base: OdiaSettings, phase: str, **serving: object) -> OdiaSettings:
    suffix = f"{phase}-{uuid.uuid4().hex[:6]}"
    topics = TopicSettings(
        **{
            name: getattr(base.topics, name).model_copy(
                update={"name": f"{getattr(base.topics, name).name}.bench-{suffix}"}
            )
            for name in TopicSettings.model_fields
        }
    )
    return base.model_copy(
        update={
            "app_id": f"{base.app_id}-bench-{suffix}",
            "topics": topics,
            "serving": base.serving.model_copy(update={"metrics_port": None, **serving}),
        }
    )


class _ServingThread:
    """The real serving consumer on its own event loop, one phase after another on one generator."""

    def __init__(self, backend: str, settings: OdiaSettings) -> None:
        self.backend = backend
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-serving", daemon=True)
        self._thread.start()
        self.generator: SmallGenerator | None = None

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start_generator(self) -> None:
        from odia_stream.serving import build_generator

        self.generator = self.call(build_generator(self.settings, self.backend))

    def run_phase(self, settings: OdiaSettings, large_model: Any, router_loader: Any) -> tuple[Any, Any]:
        """Start a consumer for ``settings``; returns ``(consumer, future of its run)`` once it is ready."""
        from odia_stream.serving import build_runtime
        from serving.consumer import ServingConsumer

        assert self.generator is not None
        runtime = build_runtime(
            settings, generator=self.generator, large_model=large_model, router_loader=router_loader,
            backend=self.backend,
        )
        consumer = ServingConsumer(settings, runtime)
        future = asyncio.run_coroutine_threadsafe(consumer.run(), self._loop)
        while not consumer.ready.wait(0.2):
            if future.done():
                future.result()
        return consumer, future

    def stop(self) -> None:
        if self.generator is not None:
            self.call(self.generator.aclose(), 120)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _closed_loop(
    settings: OdiaSettings,
    requests: list[ServeRequest],
    concurrency: int,
    *,
    on_progress: Callable[[int], None],
    swap_at: int | None = None,
    publish_swap: Callable[[], float] | None = None,
    timeout_s: float = 1800.0,
) -> _PhaseResult:
    """Send ``requests`` keeping ``concurrency`` open; collect one response each."""
    producer = make_producer(settings.kafka, {"linger.ms": 1})
    responses = TopicReader(settings.kafka, settings.topics.responses.name, paced=False, timeout_s=15)
    pending = list(requests)
    open_: dict[str, _Sent] = {}
    sent: list[_Sent] = []
    done = 0
    swap_published_at: float | None = None
    started = time.time()
    deadline = time.monotonic() + timeout_s
    try:
        while done < len(requests):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(requests) - done} request(s) unanswered after {timeout_s:.0f} s")
            while pending and len(open_) < concurrency:
                req = pending.pop(0)
                s = _Sent(req, time.time())
                open_[req.request_id] = s
                sent.append(s)
                produce_model(producer, settings.topics.requests.name, req, key=req.request_id)
            producer.poll(0)
            for raw in responses.poll(0.05, max_messages=100):
                r = ServeResponse.model_validate_json(raw)
                s = open_.pop(r.request_id, None)
                if s is None:
                    continue
                s.received_at, s.response = time.time(), r
                done += 1
                on_progress(done)
                if swap_at is not None and publish_swap is not None and done == swap_at:
                    swap_published_at = publish_swap()
    finally:
        producer.flush(10)
        responses.close()
    return _PhaseResult(sent, started, time.time(), swap_published_at)


def _summarise(result: _PhaseResult) -> dict[str, Any]:
    rs = [s for s in result.sent if s.response is not None]
    total = lambda pred: [s.response.latency.total_ms for s in rs if pred(s.response)]
    is_escalated = lambda r: r.route_reason.startswith("escalated:")
    span = max(s.received_at or result.finished for s in result.sent) - min(s.sent_at for s in result.sent)
    out: dict[str, Any] = {
        "requests": len(result.sent),
        "responses": len(rs),
        "errors": sum(1 for s in rs if s.response.error is not None),
        "served_by": dict(Counter(s.response.served_by for s in rs)),
        "route_reasons": dict(Counter(s.response.route_reason for s in rs).most_common()),
        "latency_ms": {
            "served_small": percentiles(total(lambda r: r.served_by == "small")),
            "routed_small": percentiles(total(lambda r: r.served_by == "small" or is_escalated(r))),
            "routed_large": percentiles(total(lambda r: r.served_by == "large" and not is_escalated(r))),
            "escalated": percentiles(total(is_escalated)),
            "overall": percentiles(total(lambda r: True)),
            "client_end_to_end": percentiles(
                [(s.received_at - s.sent_at) * 1000 for s in rs if s.received_at]
            ),
        },
        "throughput_rps": len(rs) / span if span > 0 else float("nan"),
        "stage_ms_mean": {
            stage: float(np.mean([getattr(s.response.latency, f"{stage}_ms") for s in rs]))
            if rs
            else float("nan")
            for stage in ("route", "generate", "validate")
        },
    }
    if result.swap_published_at is not None:
        published = result.swap_published_at
        outcome = result.swap_outcomes[-1] if result.swap_outcomes else None
        new = outcome["version"] if outcome else None
        switched = (outcome or {}).get("switched_at") or result.finished
        firsts = sorted(s.response.answered_at.timestamp() for s in rs if new and s.response.adapter_version == new)
        # Requests open at any moment between the update's publication and the switch.
        during = [s for s in result.sent if s.sent_at <= switched and (s.received_at or result.finished) >= published]
        out["swap"] = {
            "published_at": published,
            "outcomes": result.swap_outcomes,
            "seconds_to_switch": switched - published if outcome else None,
            "seconds_to_first_response_from_new_version": (firsts[0] - published) if firsts else None,
            "responses_from_new_version": len(firsts),
            "requests_open_during_swap": len(during),
            "failed_during_swap": sum(1 for s in during if s.response is None or s.response.error is not None),
            "unanswered": len(result.sent) - len(rs),
        }
    return out


def _plot(routed: _PhaseResult, baseline: _PhaseResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = {
        "routed: overall": [s.response.latency.total_ms for s in routed.sent if s.response],
        "routed: served small": [
            s.response.latency.total_ms for s in routed.sent if s.response and s.response.served_by == "small"
        ],
        "routed: large (router)": [
            s.response.latency.total_ms
            for s in routed.sent
            if s.response
            and s.response.served_by == "large"
            and not s.response.route_reason.startswith("escalated:")
        ],
        "all-large baseline": [s.response.latency.total_ms for s in baseline.sent if s.response],
    }
    for label, values in series.items():
        if values:
            xs = np.sort(values)
            ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", label=f"{label} (n={len(xs)})")
    ax.set_xscale("log")
    ax.set_xlabel("server-side latency per request (ms, log)")
    ax.set_ylabel("share of requests")
    ax.set_title("Serving latency CDF: routed vs all-large baseline")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=120)


def _print(result: dict[str, Any], console: Console) -> None:
    table = Table(
        "latency (server total, ms)",
        "n",
        "p50",
        "p90",
        "p99",
        title=f"odia bench serve ({result['backend']})",
    )
    routed, base = result["routed"]["latency_ms"], result["baseline"]["latency_ms"]
    for label, stats in (
        ("served small", routed["served_small"]),
        ("routed small (escalations incl.)", routed["routed_small"]),
        ("routed large", routed["routed_large"]),
        ("overall (routed)", routed["overall"]),
        ("overall (all-large baseline)", base["overall"]),
        ("client end-to-end (routed)", routed["client_end_to_end"]),
        ("client end-to-end (baseline)", base["client_end_to_end"]),
    ):
        table.add_row(
            label, str(stats["n"]), f"{stats['p50']:.0f}", f"{stats['p90']:.0f}", f"{stats['p99']:.0f}"
        )
    console.print(table)
    r = result["ratios"]
    console.print(
        f"overall p50 routed/baseline = {r['overall_p50']:.2f}, p90 = {r['overall_p90']:.2f}; "
        f"throughput at concurrency {result['config']['concurrency']}: {result['routed']['throughput_rps']:.2f} rps "
        f"routed vs {result['baseline']['throughput_rps']:.2f} rps all-large (ratio {r['throughput']:.2f})"
    )
    console.print(f"served by: {result['routed']['served_by']}; reasons: {result['routed']['route_reasons']}")
    swap = result["routed"].get("swap") or {}

    def secs(key: str) -> str:
        value = swap.get(key)
        return f"{value:.2f} s" if isinstance(value, float) else "n/a"

    console.print(
        f"swap: ModelUpdate → switch {secs('seconds_to_switch')}, → first response of the new version "
        f"{secs('seconds_to_first_response_from_new_version')}; requests open during the swap: "
        f"{swap.get('requests_open_during_swap')}, failed: {swap.get('failed_during_swap')}; "
        f"unanswered: {swap.get('unanswered')}"
    )


def run_serve_bench(
    base: OdiaSettings, config: ServeBenchConfig, console: Console | None = None
) -> dict[str, Any]:
    """Run both phases (see the module docstring), write ``serve.json`` + ``serve_latency.png``, return the figures."""
    from kafka_runtime.local_broker import LocalBroker

    console = console or Console()
    if base.kafka.bootstrap_servers == f"127.0.0.1:{base.kafka.local_port}":
        with LocalBroker(base.broker_dir, port=base.kafka.local_port).running():
            return _run(base, config, console)
    return _run(base, config, console)


def _run(base: OdiaSettings, config: ServeBenchConfig, console: Console) -> dict[str, Any]:
    from rich.progress import Progress

    from kafka_runtime.topics import ensure_topics
    from odia_stream.large_model import ReplaySimulatedLargeModel
    from odia_stream.serving import resolve_backend
    from odia_stream.serving.routers import router_loader_for

    out_dir = config.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    work = (out_dir / "serve-work").resolve()
    settings = base.model_copy(
        update={
            "state_dir": work / f"state-{uuid.uuid4().hex[:6]}",
            "clustering": base.clustering.model_copy(update={"scope": "tools+context"}),
            "generator": base.generator.model_copy(
                update={"max_new_tokens": min(base.generator.max_new_tokens, 64)}
            ),
            "trainer": base.trainer.model_copy(update={"adapter_registry": str(work / "adapters")}),
        }
    )
    if config.budget_ms is not None:
        settings = settings.model_copy(
            update={
                "serving": settings.serving.model_copy(update={"small_latency_budget_ms": config.budget_ms})
            }
        )
    backend = resolve_backend(config.backend)
    events = app_events(Path(config.dataset), config.per_function, seed=config.seed)
    learn, held = split_events(events, 0.3, seed=config.seed)
    console.print(
        f"app: {len(events)} SNIPS records of {', '.join(BENCH_FUNCTIONS)}; "
        f"{len(learn)} to learn from, {len(held)} held out; backend {backend}"
    )

    base_dir = ensure_base_model(settings)
    registry = AdapterRegistry(work / "adapters")
    examples = training_examples(learn, settings.prompt)
    entries: list[AdapterEntry] = []
    for seed in (1, 2):
        trainer = settings.trainer.model_copy(
            update={
                "max_steps": config.train_steps,
                "batch_size": 4,
                "seed": seed,
                "learning_rate": 2e-3,
                "max_seq_len": 384,
            }
        )
        rng = random.Random(seed)
        subset = rng.sample(examples, min(len(examples), config.train_steps * 4))
        console.print(f"training adapter {seed}/2 ({config.train_steps} steps)")
        folder = train_adapter(
            base_dir, subset, trainer, work / "trained" / f"adapter-{seed}-{config.train_steps}"
        )
        entries.append(registry.register(folder, base_model=base_model_id(base_dir)))
    with console.status("learning clusters and building router snapshots"):
        router_versions = [build_router_snapshot(settings, learn, e.version) for e in entries]
    updates = [
        AdapterRegistry.to_model_update(e, settings.generator.name).model_copy(update={"router_version": rv})
        for e, rv in zip(entries, router_versions, strict=True)
    ]
    large = ReplaySimulatedLargeModel(
        events,
        dataset_name="snips",
        median_ms=config.large_median_ms,
        p90_ms=config.large_p90_ms,
        seed=config.seed,
        sleep=True,
    )
    reqs = [
        ServeRequest(request_id=f"bench-{i}-{uuid.uuid4().hex[:6]}", app=e.app, query=e.query, tools=e.tools)
        for i, e in enumerate((held * (config.requests // max(1, len(held)) + 1))[: config.requests])
    ]
    server = _ServingThread(backend, settings)
    phases: dict[str, _PhaseResult] = {}
    try:
        with console.status(f"starting the {backend} generator"):
            server.start_generator()
        for phase, mode in (("routed", "route"), ("baseline", "all_large")):
            ps = _phase_settings(settings, phase, mode=mode)
            ensure_topics(ps.kafka, ps.topics.all())
            if mode == "route":
                _publish(ps, updates[0])
            consumer, future = server.run_phase(ps, large, router_loader_for(ps))
            batch = [r.model_copy(update={"request_id": f"{phase}-{r.request_id}"}) for r in reqs]
            with Progress(console=console) as progress:
                task = progress.add_task(
                    f"{phase}: {len(batch)} requests at concurrency {config.concurrency}", total=len(batch)
                )
                result = _closed_loop(
                    ps,
                    batch,
                    config.concurrency,
                    on_progress=lambda n, t=task: progress.update(t, completed=n),
                    swap_at=len(batch) // 4 if phase == "routed" else None,
                    publish_swap=(lambda ps=ps: _publish(ps, updates[1])) if phase == "routed" else None,
                )
            consumer.stop()
            future.result(300)
            server.call(consumer.runtime.aclose(close_generator=False, close_large_model=False), 300)
            result.swap_outcomes = [
                {k: v for k, v in asdict(o).items()}
                for o in consumer.counters.swaps
                if result.swap_published_at is not None and o.version == updates[1].version
            ]
            phases[phase] = result
    finally:
        server.stop()
    routed, baseline = _summarise(phases["routed"]), _summarise(phases["baseline"])
    rl, bl = routed["latency_ms"]["overall"], baseline["latency_ms"]["overall"]
    result: dict[str, Any] = {
        "backend": backend,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "small_latency_budget_ms": settings.serving.small_latency_budget_ms,
        "max_new_tokens": settings.generator.max_new_tokens,
        "adapters": [u.version for u in updates],
        "router_versions": router_versions,
        "large_model": large.name,
        "routed": routed,
        "baseline": baseline,
        "ratios": {
            "overall_p50": rl["p50"] / bl["p50"],
            "overall_p90": rl["p90"] / bl["p90"],
            "overall_p99": rl["p99"] / bl["p99"],
            "throughput": routed["throughput_rps"] / baseline["throughput_rps"],
        },
    }
    (out_dir / "serve.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    _plot(phases["routed"], phases["baseline"], out_dir / "serve_latency.png")
    _print(result, console)
    console.print(f"written to {out_dir / 'serve.json'} and {out_dir / 'serve_latency.png'}")
    return result


def _publish(settings: OdiaSettings, update: ModelUpdate) -> float:
    """Publish ``update`` to the model-updates topic; returns when it was published (``time.time()``)."""
    at = time.time()
    publish_model(settings.kafka, settings.topics.model_updates.name, update, key=update.generator)
    return at
