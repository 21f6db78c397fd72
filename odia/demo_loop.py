"""The main job (``odia demo`` / ``make demo``): the whole learning loop on one machine.

Phase 0, setup: local broker, fresh demo topics, the ingest agents and the serving consumer as
separate processes under the supervisor (as production runs them).
Phase 1, learning: FC logs (built-in synthetic music-app traffic by default, or a dataset) are
replayed into the fc-logs topic; clusters and labels form; retrain triggers fire; the trainer
process starts once the logs are clustered, so its first round trains on all of them; it
fine-tunes and promotes an adapter; serving hot-swaps to it.
Phase 2, serving: held-out requests (never seen while learning, split by query group) go to the
request topic; their responses are collected.
Then the report: coverage, router precision, small-model AST accuracy, latency against an
all-large baseline. The large model is the **simulated** replay model (recorded calls,
latency drawn from its distribution), and the report says so.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kafka_runtime.clients import TopicReader, make_producer
from kafka_runtime.local_broker import LocalBroker
from kafka_runtime.publishing import produce_model
from kafka_runtime.topics import delete_topics, ensure_topics
from odia.dashboard_server import DashboardServer
from odia.replay_producer import ReplayProducer
from odia.runner import wait_caught_up
from odia.supervisor import Supervisor, broker_is_local
from odia_stream.clustering.factory import open_learner_view
from odia_stream.datasets import load_dataset, split_by_group, write_jsonl
from odia_stream.demo.report import HeldOut, build_report, warmup_summary, write_report
from odia_stream.demo.sizes import DEFAULT_DATASET, DemoSizes
from odia_stream.large_model.replay import ReplaySimulatedLargeModel
from odia_stream.settings import OdiaSettings, TopicSettings
from schemas import FCLogEvent, ModelUpdate, RouterUpdate, ServeRequest, ServeResponse, parse_serving_update

__all__ = ["DEFAULT_DATASET", "DemoSizes", "run_loop_demo"]


def demo_settings(base: OdiaSettings, sizes: DemoSizes, run_dir: Path, events_file: Path) -> OdiaSettings:
    """The demo's settings: its own state dir, app id and topics; bounded training; replay large model."""
    topics = TopicSettings()
    topics = topics.model_copy(update={
        name: getattr(topics, name).model_copy(update={"name": "odia-demo." + getattr(topics, name).name.removeprefix("odia.")})
        for name in type(topics).model_fields
    })
    return base.model_copy(update={
        "state_dir": run_dir,
        "model_cache_dir": base.cache_dir.resolve(),
        # A fresh app id per run: consumer groups of earlier runs never carry offsets over.
        "app_id": f"odia-demo-{uuid.uuid4().hex[:8]}",
        "topics": topics,
        "triggers": base.triggers.model_copy(update={"min_new_examples": sizes.trigger_examples}),
        "trainer": base.trainer.model_copy(update={
            "max_steps": sizes.train_steps, "max_minutes": sizes.train_minutes, "eval_gate_accuracy": sizes.gate,
            "function_accuracy_target": sizes.function_trust,
            "batch_size": sizes.train_batch_size, "learning_rate": sizes.train_learning_rate,
            "adapter_registry": str(run_dir / "adapters"),
        }),
        "router": base.router.model_copy(update={"target_precision": sizes.router_precision}),
        "serving": base.serving.model_copy(update={
            "small_latency_budget_ms": sizes.small_latency_budget_ms, "hedge": sizes.hedge,
            "latency_gate": sizes.latency_gate,
        }),
        "large_model": base.large_model.model_copy(update={"kind": "replay", "replay_dataset": events_file}),
    })


def _held_out_requests(events: list[FCLogEvent], n: int) -> list[HeldOut]:
    out = []
    for ev in events[:n]:
        req = ServeRequest(request_id=f"demo-{ev.event_id}", app=ev.app, query=ev.query, history=ev.history, tools=ev.tools)
        out.append(HeldOut(req, ev.call))
    return out


def _trust_probes(settings: OdiaSettings, console: Console) -> dict[str, int] | None:
    """Serving's trust probes so far, by outcome, from its metrics endpoint (``None``: no endpoint on a
    known port, or it could not be read, which is said)."""
    s = settings.serving
    if not s.metrics_port:  # none, or 0: a port serving chose itself
        return None
    headers = {"Authorization": f"Bearer {s.metrics_token.get_secret_value()}"} if s.metrics_token else {}
    try:
        page = httpx.get(f"http://{s.metrics_host}:{s.metrics_port}/metrics", headers=headers, timeout=10.0)
        page.raise_for_status()
    except httpx.HTTPError as exc:
        console.print(f"[yellow]serving's metrics could not be read ({type(exc).__name__}); trust probes not reported[/]")
        return None
    return {
        sample.labels["outcome"]: int(sample.value)
        for family in text_string_to_metric_families(page.text) if family.name == "odia_serving_trust_probes"
        for sample in family.samples if sample.name.endswith("_total")
    }


def _check_workers(sup: Supervisor) -> None:
    for line in sup.check():
        if "restart limit" in line:
            raise RuntimeError(line)


def _wait_for_update(
    settings: OdiaSettings, sup: Supervisor, timeout_s: float, console: Console
) -> ModelUpdate | RouterUpdate | None:
    """The trainer's first update: a promoted adapter (``ModelUpdate``), a router alone when the
    round promoted nothing (``RouterUpdate``), or ``None`` when the round published nothing."""
    reports = settings.state_dir / "trainer" / "reports"
    topic = TopicReader(settings.kafka, settings.topics.model_updates.name)
    deadline = time.monotonic() + timeout_s
    try:
        with console.status("phase 1: waiting for the trainer (training set → LoRA → gate)") as status:
            while time.monotonic() < deadline:
                _check_workers(sup)
                for raw in topic.poll(1.0):
                    return parse_serving_update(raw)
                done = sorted(reports.glob("round-*.json")) if reports.exists() else []
                if done:
                    last = json.loads(done[-1].read_text())
                    if last["model_update"] is None:  # else it is on its way to the topic
                        console.print(f"[yellow]trainer round {last['status']}: {last['reason']}[/]")
                        return None
                tail = sup.workers["trainer"].log_tail(1).strip()[-100:]
                status.update(f"phase 1: waiting for the trainer … {tail}")
        raise TimeoutError(f"no training outcome after {timeout_s:.0f}s; see {sup.workers['trainer'].log_path}")
    finally:
        topic.close()


def _wait_for_swap(settings: OdiaSettings, sup: Supervisor, probe: ServeRequest, update: ModelUpdate | RouterUpdate,
                   timeout_s: float, console: Console) -> float:
    """Send probes until serving answers with ``update``'s adapter (none for a ``RouterUpdate``) and
    router; seconds it took."""
    version = update.version or f"router {update.router_version} with no adapter"
    producer = make_producer(settings.kafka)
    responses = TopicReader(settings.kafka, settings.topics.responses.name)
    started = time.monotonic()
    try:
        with console.status(f"waiting for serving to hot-swap to {version}"):
            n = 0
            while time.monotonic() - started < timeout_s:
                _check_workers(sup)
                rid = f"probe-{n}-{uuid.uuid4().hex[:6]}"
                produce_model(producer, settings.topics.requests.name, probe.model_copy(update={"request_id": rid}), rid)
                producer.flush(10)
                n += 1
                wait_until = time.monotonic() + 5
                while time.monotonic() < wait_until:
                    for raw in responses.poll(0.5):
                        r = ServeResponse.model_validate_json(raw)
                        if r.request_id.startswith("probe-") and r.adapter_version == update.version and (
                            update.router_version is None or r.router_version == update.router_version
                        ):
                            return time.monotonic() - started
        raise TimeoutError(f"serving did not swap to {version} within {timeout_s:.0f}s; see {sup.workers['serving'].log_path}")
    finally:
        responses.close()


def _serve(settings: OdiaSettings, sup: Supervisor, held: list[HeldOut], rate: float, timeout_s: float,
           console: Console, phase: str = "phase 2") -> list[ServeResponse]:
    """Publish the held-out requests at ``rate``/s and collect one response each."""
    producer = make_producer(settings.kafka, {"linger.ms": 5})
    responses = TopicReader(settings.kafka, settings.topics.responses.name)
    wanted = {h.request.request_id for h in held}
    got: dict[str, ServeResponse] = {}
    deadline = time.monotonic() + timeout_s
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        sent_task = progress.add_task(f"{phase}: requests sent", total=len(held))
        got_task = progress.add_task(f"{phase}: responses", total=len(held))
        next_send, i = time.monotonic(), 0
        try:
            while len(got) < len(wanted):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(wanted) - len(got)} requests unanswered after {timeout_s:.0f}s")
                _check_workers(sup)
                while i < len(held) and time.monotonic() >= next_send:
                    req = held[i].request
                    produce_model(producer, settings.topics.requests.name, req, req.request_id)
                    i += 1
                    next_send += 1.0 / rate
                    progress.update(sent_task, completed=i)
                producer.poll(0)
                for raw in responses.poll(0.2):
                    r = ServeResponse.model_validate_json(raw)
                    if r.request_id in wanted and r.request_id not in got:
                        got[r.request_id] = r
                progress.update(got_task, completed=len(got))
        finally:
            producer.flush(10)
            responses.close()
    return list(got.values())


@contextlib.contextmanager
def _maybe_local_broker(settings: OdiaSettings, broker_dir: Path, console: Console) -> Iterator[None]:
    """The local broker (data in ``broker_dir``) when the configured broker is local."""
    if not broker_is_local(settings):
        yield
        return
    broker = LocalBroker(broker_dir, port=settings.kafka.local_port)
    with broker.running() as started:
        console.print(f"local broker at {broker.address}" + ("" if started else " (already running)"))
        yield


def _start_dashboard(settings: OdiaSettings, port: int | None, console: Console) -> DashboardServer | None:
    """The dashboard over the demo's topics (every response from the beginning), or ``None`` when
    not asked for or when its port is taken (said on the console)."""
    if port is None:
        return None
    server = DashboardServer(settings, port=None if port < 0 else port, from_beginning=True)
    try:
        url = server.start()
    except OSError as exc:
        console.print(f"[yellow]dashboard not started ({exc}); set ODIA_DASHBOARD__PORT to a free port[/]")
        return None
    guarded = " (it asks for ODIA_DASHBOARD__TOKEN: open it once as ?token=<token>)" if settings.dashboard.token else ""
    console.print(f"phase 0: the dashboard shows the loop live at [bold]{url}[/]{guarded}")
    return server


def run_loop_demo(
    base: OdiaSettings, dataset: str = DEFAULT_DATASET, *, sizes: DemoSizes = DemoSizes(), seed: int = 0,
    out_dir: Path = Path("reports/demo"), console: Console | None = None, dashboard_port: int | None = -1,
) -> dict[str, Any]:
    """Run the whole loop and write the report; returns it. The dashboard is served meanwhile on
    ``dashboard_port`` (-1: the settings' port, 0: any free port, ``None``: no dashboard)."""
    console = console or Console()
    run_dir = (base.state_dir / "demo").resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    events_file = run_dir / "events.jsonl"
    settings = demo_settings(base, sizes, run_dir, events_file)

    source = dataset if dataset != DEFAULT_DATASET else f"{DEFAULT_DATASET}:n={sizes.events},seed={seed}"
    console.rule("[bold]odia-stream demo")
    events = list(load_dataset(Path(source), limit=None if source.startswith("synthetic:") else sizes.events))
    learn, test = split_by_group(events, test_fraction=0.2, seed=seed)
    held = _held_out_requests(test, sizes.held_out)
    warmup = _held_out_requests(test[len(held):], sizes.warmup)
    write_jsonl(events, events_file)
    synthetic_note = " (SYNTHETIC music-app traffic: generated, not real users)" if source.startswith("synthetic:") else ""
    console.print(f"data: {source}{synthetic_note}: {len(learn)} events to learn from, {len(held)} held-out requests")
    large = ReplaySimulatedLargeModel(events, dataset_name=Path(source).name, median_ms=settings.large_model.replay_median_ms,
                                      p90_ms=settings.large_model.replay_p90_ms, seed=settings.large_model.seed, sleep=False)

    started = time.monotonic()
    with _maybe_local_broker(settings, base.broker_dir, console):
        delete_topics(settings.kafka, [t.name for t in settings.topics.all()])
        ensure_topics(settings.kafka, settings.topics.all())
        # The trainer starts once the logs are clustered: the triggers published meanwhile coalesce
        # into one round over all of them (in production it runs all along and retrains as they come).
        sup = Supervisor(settings, services=("agents", "serving"))
        sup.start()
        console.print(f"phase 0: ingest agents and serving started (logs: {settings.state_dir / 'logs'})")
        dashboard = _start_dashboard(settings, dashboard_port, console)
        try:
            ReplayProducer(settings.kafka, settings.topics.fc_logs.name).publish(learn, progress=True)
            with console.status("phase 1: ingest agents clustering the logs"):
                wait_caught_up(settings, sup.workers["agents"], timeout_s=sizes.timeout_s)
            with open_learner_view(settings) as view:
                summary = view.summary()
                clusters = {"clusters": summary.clusters, "simple": summary.simple, "complex": summary.complex,
                            "undecided": summary.undecided, "unique_queries": summary.unique_queries,
                            "training_examples": summary.training_examples,
                            "largest": [view.cluster_state(c).model_dump(mode="json", include={
                                "cluster_id", "label", "size", "dominant_function", "dominant_share", "sample_queries"})
                                for c in sorted(view.clusters.values(), key=lambda c: -c.size)[:15]]}
            console.print(f"phase 1: {summary.clusters} clusters ({summary.simple} simple, {summary.complex} complex, "
                          f"{summary.undecided} undecided) from {summary.events} events")
            sup.start_service("trainer")
            console.print("phase 1: trainer started; it reads the retrain triggers the agents published")
            update = _wait_for_update(settings, sup, sizes.timeout_s, console)
            swap_s = None
            if isinstance(update, RouterUpdate):
                console.print(f"phase 1: no adapter promoted; router {update.router_version} published alone "
                              "(the template tier answers, the rest goes large)")
            elif update is not None:
                console.print(f"phase 1: adapter {update.version} promoted (eval accuracy "
                              f"{update.eval_metrics.get('eval_accuracy', float('nan')):.3f}), router {update.router_version}")
            if update is not None:
                swap_s = _wait_for_swap(settings, sup, held[0].request, update, 300, console)
                console.print(f"phase 1: serving answers with {update.version or 'no adapter'}, router "
                              f"{update.router_version} ({swap_s:.1f}s after probing began)")
            # Production trains on other machines: no training competes with serving for these cores
            # while the latency phase is measured.
            sup.stop_service("trainer")
            warmed: dict[str, Any] = {}
            if warmup:
                console.print(f"phase 2: trainer stopped; serving answers {len(warmup)} other held-out requests first "
                              "(not measured: a running service has seen traffic; it earns per-function trust there)")
                warmed = warmup_summary(_serve(settings, sup, warmup, sizes.request_rate, sizes.timeout_s, console))
                console.print(f"phase 2: warm-up served {warmed['served_small']} small, {warmed['served_template']} by "
                              f"templates; functions trusted by serving's probes: {', '.join(warmed['trust_earned']) or 'none'}")
            console.print("phase 3: serving alone is measured")
            responses = _serve(settings, sup, held, sizes.request_rate, sizes.timeout_s, console, "phase 3")
            probes = _trust_probes(settings, console)
        finally:
            if dashboard is not None:
                dashboard.stop()
            sup.stop()
    baseline = {h.request.request_id: large.latency_ms(h.request.request_id) for h in held}
    report = build_report(
        held, responses, baseline, large_model=large.name, simulated_large=True, clusters=clusters,
        extra={"dataset": source, "synthetic_data": source.startswith("synthetic:"), "events_learned": len(learn),
               "adapter_version": update.version if update else None,
               "router_version": update.router_version if update else None,
               "swap_seconds": swap_s, "demo_seconds": round(time.monotonic() - started, 1),
               "router_target_precision": sizes.router_precision, "train_steps": sizes.train_steps,
               "train_learning_rate": sizes.train_learning_rate, "gate": sizes.gate,
               "function_trust": sizes.function_trust,
               "small_latency_budget_ms": sizes.small_latency_budget_ms, "hedge": sizes.hedge,
               "latency_gate": sizes.latency_gate, "warmup": warmed, "trust_probes": probes},
        share_target=0.5 if source.startswith("synthetic:") else 0.4,
        hedge_max_ms=settings.serving.hedge_max_delay_ms if settings.serving.hedge else None,
    )
    paths = write_report(report, responses, baseline, out_dir)
    console.print((out_dir / "report.md").read_text())
    console.print(f"report: {', '.join(str(p) for p in paths)}")
    return report
