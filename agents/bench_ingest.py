"""``odia bench ingest``: end-to-end ingest throughput (broker → worker → store) on a Zipf
replay, next to the embedder's standalone throughput measured in the same run, cluster purity
against the dataset's function labels, and per-event clustering cost at 10k vs 100k clusters."""

from __future__ import annotations

import json
import platform
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.replay_producer import ReplayProducer
from agents.runner import WorkerProcess, wait_caught_up
from agents.topics import delete_topics, ensure_topics
from odia_stream.bench.clustering_cost import measure_clustering_cost
from odia_stream.cluster_quality import cluster_purity
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.context import scope_key
from odia_stream.datasets import load_dataset, zipf_resample
from odia_stream.local_broker import LocalBroker
from odia_stream.normalize import normalize_query
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent


def _fresh_settings(base: OdiaSettings, work_dir: Path) -> OdiaSettings:
    tag = uuid.uuid4().hex[:6]
    topics = {
        name: getattr(base.topics, name).model_copy(update={"name": f"{getattr(base.topics, name).name}.bench-{tag}"})
        for name in type(base.topics).model_fields
    }
    return base.model_copy(
        update={"state_dir": work_dir / f"e2e-{tag}", "app_id": f"odia-bench-{tag}", "topics": type(base.topics)(**topics)}
    )


def embedder_throughput(settings: OdiaSettings, texts: list[str]) -> float:
    """Queries/s of the configured embedder alone, in the worker's micro-batch size (no cache)."""
    from odia_stream.embedding import build_embedder

    emb = build_embedder(settings.embedding.model, settings.cache_dir)
    emb.embed(texts[:8])  # warm-up
    bs = settings.clustering.batch_size
    t0 = time.perf_counter()
    for i in range(0, len(texts), bs):
        emb.embed(texts[i : i + bs])
    return len(texts) / (time.perf_counter() - t0)


def run_ingest_bench(
    base: OdiaSettings,
    datasets: list[Path],
    *,
    events: int = 20_000,
    base_events: int = 6_000,
    zipf_exponent: float = 1.1,
    cost_sizes: tuple[int, ...] = (10_000, 100_000),
    out_dir: Path = Path("reports/bench"),
    console: Console | None = None,
) -> dict[str, Any]:
    """Run every measurement, write ``ingest.json`` under ``out_dir`` and return the figures."""
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = (out_dir / "work").resolve()
    settings = _fresh_settings(base, work)
    pool: list[FCLogEvent] = []
    per_dataset = max(1, base_events // max(1, len(datasets)))
    for path in datasets:
        pool.extend(list(load_dataset(path))[:per_dataset])
    replay = list(zipf_resample(pool, events, exponent=zipf_exponent, seed=0))
    mode = settings.clustering.scope
    unique = {(scope_key(e.app, e.tools, e.history, mode), normalize_query(e.query)) for e in replay}
    console.print(f"{len(replay)} events (Zipf {zipf_exponent}) over {len(pool)} base records: {len(unique)} unique queries")

    if settings.kafka.bootstrap_servers == f"127.0.0.1:{settings.kafka.local_port}":
        with LocalBroker(base.broker_dir, port=settings.kafka.local_port).running():
            result = _measure(settings, pool, replay, unique, mode, cost_sizes, work, console)
    else:
        result = _measure(settings, pool, replay, unique, mode, cost_sizes, work, console)
    (out_dir / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print_ingest_bench(result, console)
    console.print(f"written to {out_dir / 'ingest.json'}")
    return result


def _measure(
    settings: OdiaSettings,
    pool: list[FCLogEvent],
    replay: list[FCLogEvent],
    unique: set[tuple[str, str]],
    mode: str,
    cost_sizes: tuple[int, ...],
    work: Path,
    console: Console,
) -> dict[str, Any]:
    ensure_topics(settings.kafka.bootstrap_servers, settings.topics.all())
    worker = WorkerProcess(settings, settings.state_dir / "worker.log")
    worker.start()
    try:
        with ReplayProducer(settings.kafka.bootstrap_servers, settings.topics.fc_logs.name) as producer:
            warm = FCLogEvent(event_id=f"warm-{uuid.uuid4().hex}", query="warm up", app="bench-warmup")
            producer.publish([warm])
            with console.status("worker starting (loads the embedder)"):
                wait_caught_up(settings, worker, timeout_s=600, poll_s=0.5)
            t0 = time.perf_counter()
            producer.publish(replay, progress=True)
        with console.status("worker applying the replay"):
            wait_caught_up(settings, worker, timeout_s=3600, poll_s=0.25)
        e2e_s = time.perf_counter() - t0
    finally:
        worker.stop()

    learner = open_learner(settings)
    try:
        assignment = {(g.scope, g.norm): g.cluster_id for g in learner.groups.values()}
        truth = [e.call.name if e.call else "<none>" for e in replay]
        pred = [assignment[(scope_key(e.app, e.tools, e.history, mode), normalize_query(e.query))] for e in replay]
        purity_by_app = {
            app: cluster_purity([t for t, e in zip(truth, replay) if e.app == app], [p for p, e in zip(pred, replay) if e.app == app])
            for app in sorted({e.app for e in replay})
        }
        summary = learner.summary()
    finally:
        learner.close()
    delete_topics(settings.kafka.bootstrap_servers, [t.name for t in settings.topics.all()])

    texts = sorted(q for _, q in unique)
    emb_qps = embedder_throughput(settings, texts)
    pipeline_uqps = len(unique) / e2e_s
    cost = measure_clustering_cost(
        open_embedder(settings), pool[: min(len(pool), 2048)], settings, work / "cost", sizes=cost_sizes
    )
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "embedder": learner.embedder.model_id,
        "events": len(replay),
        "unique_queries": len(unique),
        "end_to_end_seconds": e2e_s,
        "events_per_s": len(replay) / e2e_s,
        "unique_queries_per_s": pipeline_uqps,
        "embedder_standalone_queries_per_s": emb_qps,
        "pipeline_to_embedder_ratio": pipeline_uqps / emb_qps,
        "scope": mode,
        "purity_events": cluster_purity(truth, pred),
        "purity_by_app": purity_by_app,
        "clusters": summary.clusters,
        "simple_clusters": summary.simple,
        "clustering_cost": cost,
    }
    return result


def print_ingest_bench(r: dict[str, Any], console: Console) -> None:
    """The figures as tables."""
    t = Table("figure", "value", title=f"ingest benchmark ({r['embedder']})")
    t.add_row("events (unique queries)", f"{r['events']} ({r['unique_queries']})")
    t.add_row("end-to-end events/s", f"{r['events_per_s']:.1f}")
    t.add_row("end-to-end unique queries/s", f"{r['unique_queries_per_s']:.1f}")
    t.add_row("embedder alone, queries/s", f"{r['embedder_standalone_queries_per_s']:.1f}")
    t.add_row("pipeline / embedder (target ≥ 0.9)", f"{r['pipeline_to_embedder_ratio']:.2f}")
    t.add_row(f"cluster purity (events, vs function labels; scope {r['scope']})", f"{r['purity_events']:.3f}")
    for app, value in r["purity_by_app"].items():
        t.add_row(f"  purity, {app}", f"{value:.3f}")
    t.add_row("clusters (simple)", f"{r['clusters']} ({r['simple_clusters']})")
    console.print(t)
    c = Table("clusters in store", "ms per event", "ratio to smallest", "optimize s", title="clustering cost vs store size")
    for row in r["clustering_cost"]["rows"]:
        c.add_row(str(row["clusters_in_store"]), f"{row['ms_per_event']:.2f}", f"{row['ratio_to_smallest']:.2f}", f"{row['optimize_s']:.1f}")
    console.print(c)
