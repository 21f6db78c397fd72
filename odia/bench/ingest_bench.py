"""``odia bench ingest``: end-to-end ingest throughput (broker → worker → store) on a Zipf
replay, next to the embedder's standalone throughput measured in the same run, cluster purity
against the dataset's function labels, and per-event clustering cost at 10k vs 100k clusters."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.worker import set_torch_threads
from kafka_runtime.local_broker import LocalBroker
from kafka_runtime.topics import delete_topics, ensure_topics
from odia.bench.clustering_cost import measure_clustering_cost
from odia.bench.common import machine
from odia.replay_producer import ReplayProducer
from odia.runner import WorkerProcess, wait_caught_up
from odia_stream.cluster_quality import cluster_purity
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.context import ScopeMode
from odia_stream.datasets import load_dataset, zipf_resample
from odia_stream.embedding import Embedder, build_embedder
from odia_stream.keys import group_key_of, template_text
from odia_stream.settings import OdiaSettings
from odia_stream.templates import QueryTemplater
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


def worker_embed_calls(
    templater_of: Callable[[str], QueryTemplater], replay: list[FCLogEvent], batch_size: int, mode: ScopeMode
) -> list[list[str]]:
    """The texts the worker had to embed, call by call: each micro-batch's new queries as
    templates, every distinct text once (the worker's embedding cache).

    Reconstructed after the run: one app's events share a partition, so an app's micro-batches
    are windows of ``batch_size`` of its events; templates use the final dictionaries (an
    entity learned after a query's first batch is the only difference).
    """
    seen_keys: set[tuple[str, str]] = set()
    seen_texts: set[str] = set()
    calls: dict[tuple[str, int], list[str]] = {}
    position: Counter[str] = Counter()
    for e in replay:
        window = position[e.app] // batch_size
        position[e.app] += 1
        key = group_key_of(e, mode)
        if key in seen_keys:
            continue
        seen_keys.add(key)
        text = template_text(templater_of(e.app).template(e.query))
        if text not in seen_texts:
            seen_texts.add(text)
            calls.setdefault((e.app, window), []).append(text)
    return list(calls.values())


def embedding_seconds(embedder: Embedder, calls: list[list[str]]) -> float:
    """Seconds ``embedder`` (uncached) takes for ``calls``, one ``embed`` per call."""
    embedder.embed(["warm up", "warm up the embedder"])
    t0 = time.perf_counter()
    for texts in calls:
        embedder.embed(texts)
    return time.perf_counter() - t0


def faust_floor(settings: OdiaSettings, events: int, timeout_s: float = 300) -> dict[str, float]:
    """A bare Faust agent (count and ack) reading the replay topic: Faust's own ceiling."""
    out = settings.state_dir / "faust_floor.json"
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "odia.bench.faust_floor",
        settings.kafka.bootstrap_servers, settings.topics.fc_logs.name, str(events), str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"the Faust floor run failed (rc={proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(out.read_text())


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
    unique = {group_key_of(e, mode) for e in replay}
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
    mode: ScopeMode,
    cost_sizes: tuple[int, ...],
    work: Path,
    console: Console,
) -> dict[str, Any]:
    ensure_topics(settings.kafka, settings.topics.all())
    worker = WorkerProcess(settings, settings.state_dir / "worker.log")
    worker.start()
    try:
        with ReplayProducer(settings.kafka, settings.topics.fc_logs.name) as producer:
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

    with console.status("bare Faust agent reading the same topic"):
        floor = faust_floor(settings, len(replay) + 1)  # + the warm-up event
    learner = open_learner(settings)
    try:
        assignment = {g.key: g.cluster_id for g in learner.groups.values()}
        truth = [e.call.name if e.call else "<none>" for e in replay]
        pred = [assignment[group_key_of(e, mode)] for e in replay]
        purity_by_app = {
            app: cluster_purity([t for t, e in zip(truth, replay) if e.app == app], [p for p, e in zip(pred, replay) if e.app == app])
            for app in sorted({e.app for e in replay})
        }
        summary = learner.summary()
        calls = worker_embed_calls(learner.templater_of, replay, settings.clustering.batch_size, mode)
    finally:
        learner.close()
    delete_topics(settings.kafka, [t.name for t in settings.topics.all()])

    texts = [t for call in calls for t in call]
    bare = build_embedder(settings.embedding.model, settings.cache_dir)
    with console.status(f"embedder alone: {len(texts)} texts in the worker's {len(calls)} calls"):
        all_threads = set_torch_threads(settings.embedding.threads_in_worker())
        try:
            as_worker_s = embedding_seconds(bare, calls)
        finally:
            set_torch_threads(all_threads)
    bs = settings.clustering.batch_size
    with console.status("embedder alone: large batches, all cores"):
        large_s = embedding_seconds(bare, [texts[i : i + bs] for i in range(0, len(texts), bs)])
    pipeline_uqps = len(unique) / e2e_s
    cost = measure_clustering_cost(
        open_embedder(settings), pool[: min(len(pool), 2048)], settings, work / "cost", sizes=cost_sizes
    )
    result: dict[str, Any] = {
        "machine": machine(),
        "embedder": learner.embedder.model_id,
        "events": len(replay),
        "unique_queries": len(unique),
        "embedded_texts": len(texts),
        "end_to_end_seconds": e2e_s,
        "events_per_s": len(replay) / e2e_s,
        "unique_queries_per_s": pipeline_uqps,
        "embedding_alone_seconds": as_worker_s,
        "embedding_alone_queries_per_s": len(unique) / as_worker_s,
        "pipeline_to_embedder_ratio": as_worker_s / e2e_s,
        "embedding_large_batches_seconds": large_s,
        "embedder_large_batches_texts_per_s": len(texts) / large_s,
        "pipeline_to_large_batch_embedder_ratio": large_s / e2e_s,
        "faust_floor_seconds": floor["seconds"],
        "faust_floor_events_per_s": floor["events_per_s"],
        "faust_floor_ratio_ceiling": min(1.0, as_worker_s / floor["seconds"]),
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
    t.add_row(
        f"embedder alone, the worker's {r['embedded_texts']} texts in its calls: s (unique queries/s)",
        f"{r['embedding_alone_seconds']:.1f} ({r['embedding_alone_queries_per_s']:.1f})",
    )
    t.add_row("pipeline / embedder = embedding s / end-to-end s (target ≥ 0.9)", f"{r['pipeline_to_embedder_ratio']:.2f}")
    t.add_row(
        "embedder alone, large batches, all cores: texts/s (ratio)",
        f"{r['embedder_large_batches_texts_per_s']:.1f} ({r['pipeline_to_large_batch_embedder_ratio']:.2f})",
    )
    t.add_row(
        "bare Faust agent on the same topic: events/s (ratio ceiling it sets)",
        f"{r['faust_floor_events_per_s']:.0f} ({r['faust_floor_ratio_ceiling']:.2f})",
    )
    t.add_row(f"cluster purity (events, vs function labels; scope {r['scope']})", f"{r['purity_events']:.3f}")
    for app, value in r["purity_by_app"].items():
        t.add_row(f"  purity, {app}", f"{value:.3f}")
    t.add_row("clusters (simple)", f"{r['clusters']} ({r['simple_clusters']})")
    console.print(t)
    c = Table("layout", "clusters in store", "ms per event", "ratio to smallest", "optimize s", title="clustering cost vs store size")
    for row in r["clustering_cost"]["rows"]:
        c.add_row(
            row["layout"], str(row["clusters_in_store"]), f"{row['ms_per_event']:.2f}", f"{row['ratio_to_smallest']:.2f}",
            f"{row['optimize_s']:.1f}",
        )
    console.print(c)
