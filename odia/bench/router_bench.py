"""``odia bench router``: the router on held-out data, and how fast it decides.

Per dataset: split by group (HammerBench by dialogue ``id``), train a learner on one part (no
Kafka: the learner in-process, as the ingest worker runs it), build a router snapshot with each
stage-2 classifier (sklearn and river, measured side by side) and with stage 1 alone (the
baseline), and route the other part. A second learner on *all* the data says which held-out
requests are *truly simple* (their cluster is simple there). Figures:

* precision, coverage (right small decisions over requests with a call), recall of truly simple
  requests, share routed small, share of follow-up turns routed small, reasons;
* decision latency p50/p99 with embedding (a cold, uncached embedder) and without it, next to the
  embedder alone, measured in the same run; stage-1 lookup through the numpy matrix and through
  the embedded Qdrant engine;
* precision and coverage against the match and classifier thresholds (a PNG).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from odia.bench.common import SplitOptions, each_dataset, fmt, learn, percentiles, split_dataset, write_report
from odia_stream.embedding import CachedEmbedder, Embedder
from odia_stream.figures import save_figure
from odia_stream.routing import (
    Router,
    RouterSnapshot,
    RoutingEvaluation,
    Threshold,
    build_snapshot,
    evaluate_decisions,
    request_of,
    truly_simple_flags,
)
from odia_stream.routing.lookup import IndexClusterLookup, MatrixClusterLookup, fill_index
from odia_stream.settings import OdiaSettings
from odia_stream.store import open_cluster_index
from schemas import FCLogEvent, ServeRequest

#: Threshold values of the precision/coverage sweep.
SWEEP = tuple(round(x, 3) for x in np.linspace(0.2, 1.0, 33))


def _figures(ev: RoutingEvaluation) -> dict[str, Any]:
    return {
        "precision": None if ev.routed_small == 0 else ev.precision,
        "coverage": ev.coverage,
        "recall_truly_simple": ev.recall_truly_simple,
        "truly_simple": ev.truly_simple,
        "small_share": ev.small_share,
        "routed_small": ev.routed_small,
        "wrong_small": ev.routed_small - ev.correct_small,
        "requests": ev.requests,
        "follow_ups": ev.context_dependent,
        "follow_ups_small_share": ev.context_small_share,
        "by_stage": ev.by_stage,
        "reasons": ev.reasons,
    }


def decision_latency(router: Router, requests: Sequence[ServeRequest], n: int) -> dict[str, Any]:
    """p50/p99 of single ``decide`` calls: total (embedding included) and without the embedding."""
    picked = list(requests[:n])
    for r in picked[:5]:
        router.decide(r)  # warm-up
    total, without = [], []
    for r in tqdm(picked, desc="router latency", unit="request", leave=False):
        d = router.decide(r)
        if d.stage != "safety":
            total.append(d.decide_ms)
            without.append(d.decide_ms - d.embed_ms)
    return {"with_embedding_ms": percentiles(total), "without_embedding_ms": percentiles(without)}


def embedder_latency(embedder: Embedder, texts: Sequence[str]) -> dict[str, float]:
    """p50/p99 of ``embed([text])`` alone (the baseline of the decision latency)."""
    for t in texts[:5]:
        embedder.embed([t])
    times = []
    for t in texts:
        t0 = time.perf_counter()
        embedder.embed([t])
        times.append((time.perf_counter() - t0) * 1000.0)
    return percentiles(times)


def lookup_latency(snapshot: RouterSnapshot, vectors: np.ndarray, scopes: Sequence[str], work_dir: Path) -> dict[str, Any]:
    """Stage-1 nearest-cluster lookup: numpy matrices vs the embedded Qdrant engine (same answers?)."""
    table = snapshot.clusters
    matrix = MatrixClusterLookup(table.vectors, table.scopes)
    index = open_cluster_index("edge", str(work_dir), "router-lookup", snapshot.embedder_id, snapshot.dim)
    try:
        fill_index(index, [int(x) for x in table.ids], table.vectors, table.scopes, table.labels)
        store = IndexClusterLookup(index, {int(c): i for i, c in enumerate(table.ids)})
        out: dict[str, Any] = {"clusters": len(table)}
        answers = {}
        for name, lookup in (("matrix", matrix), ("qdrant_edge", store)):
            times, rows = [], []
            for v, s in zip(vectors, scopes, strict=True):
                t0 = time.perf_counter()
                hit = lookup.nearest(v, s)
                times.append((time.perf_counter() - t0) * 1000.0)
                rows.append(None if hit is None else hit.row)
            out[name + "_ms"] = percentiles(times)
            answers[name] = rows
        out["same_nearest_share"] = float(np.mean([a == b for a, b in zip(answers["matrix"], answers["qdrant_edge"])]))
        return out
    finally:
        index.close()


def threshold_sweep(
    router: Router, requests: Sequence[ServeRequest], events: Sequence[FCLogEvent], stage: str
) -> list[dict[str, float | None]]:
    """Precision and coverage on the held-out part as one stage's threshold moves (others as calibrated)."""
    attr = {"match": "match_threshold", "classifier": "classifier_threshold"}[stage]
    keep = getattr(router, attr)
    rows = []
    try:
        for t in tqdm(SWEEP, desc=f"{stage} threshold sweep", unit="threshold", leave=False):
            setattr(router, attr, t)
            ev = evaluate_decisions(events, router.decide_many(requests))
            rows.append({"threshold": t, "precision": None if ev.routed_small == 0 else ev.precision,
                         "coverage": ev.coverage, "small_share": ev.small_share})
    finally:
        setattr(router, attr, keep)
    return rows


def _threshold(t: Threshold) -> float | None:
    return t.value if t.enabled else None


def bench_dataset(
    base: OdiaSettings, path: Path, embedder: Embedder, work_dir: Path, options: SplitOptions,
    *,
    latency_requests: int,
    console: Console,
) -> dict[str, Any]:
    """Every figure of one dataset (see the module doc)."""
    split = split_dataset(base, path, options)
    scope, settings, events, train, test = split.scope, split.settings, split.events, split.train, split.test
    console.print(f"[bold]{path}[/]: {len(train)} train / {len(test)} held-out events (scope {scope})")
    t0 = time.perf_counter()
    learner = learn(settings.model_copy(update={"state_dir": work_dir / "train"}), train, embedder, "learning (train part)")
    learn_s = time.perf_counter() - t0
    everything = learn(settings.model_copy(update={"state_dir": work_dir / "all"}), events, embedder, "learning (all data)")
    truly = truly_simple_flags(everything, test)
    everything.close()
    requests = [request_of(e) for e in test]
    result: dict[str, Any] = {
        "dataset": str(path), "scope": scope, "train_events": len(train), "test_events": len(test),
        "learner": dataclasses.asdict(learner.summary()), "learn_seconds": learn_s, "variants": {},
    }
    routers: dict[str, Router] = {}
    try:
        for name, update in (("sklearn", {"classifier": "sklearn"}), ("river", {"classifier": "river"})):
            s = settings.model_copy(update={"router": settings.router.model_copy(update=update)})
            b0 = time.perf_counter()
            snapshot = build_snapshot(learner, s, embedder, progress=True)
            build_s = time.perf_counter() - b0
            router = Router(snapshot, embedder, s.router)
            ev = evaluate_decisions(test, router.decide_many(requests), truly)
            result["variants"][name] = {
                "build_seconds": build_s, "classifier_seconds": snapshot.report.get("classifier_seconds"),
                "thresholds": {k: _threshold(v) for k, v in snapshot.thresholds.items()},
                "calibration": snapshot.report["calibration"], **_figures(ev),
            }
            routers[name] = router
        stage1 = routers["sklearn"]
        keep = stage1.classifier_threshold
        stage1.classifier_threshold = float("inf")
        result["variants"]["stage1_only"] = _figures(evaluate_decisions(test, stage1.decide_many(requests), truly))
        stage1.classifier_threshold = keep
        chosen = base.router.classifier
        full, only1 = result["variants"][chosen], result["variants"]["stage1_only"]
        result["default_classifier"] = chosen
        result["coverage_ratio_to_stage1_only"] = full["coverage"] / only1["coverage"] if only1["coverage"] else None
        router = routers[chosen]
        result["sweeps"] = {
            "match": threshold_sweep(router, requests, test, "match"),
            "classifier": threshold_sweep(router, requests, test, "classifier"),
            "calibrated": {"match": _threshold(router.snapshot.thresholds["match"]),
                           "classifier": _threshold(router.snapshot.thresholds["classifier"])},
        }
        # Latency: a cold embedder (no cache), single requests, as serving sees new queries.
        inner = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
        cold = Router(router.snapshot, inner, router.settings)
        queries = [r.query for r in requests[:latency_requests]]
        result["latency"] = {
            **decision_latency(cold, requests, latency_requests),
            "embedder_alone_ms": embedder_latency(inner, queries),
        }
        lat = result["latency"]
        lat["p99_ratio_to_embedder"] = lat["with_embedding_ms"]["p99"] / lat["embedder_alone_ms"]["p99"]
        prepared = [cold.prepare(r) for r in requests[:latency_requests]]
        vectors = inner.embed([p.text for p in prepared])
        result["lookup"] = lookup_latency(router.snapshot, vectors, [p.scope for p in prepared], work_dir / "lookup")
    finally:
        learner.close()
    return result


def plot_sweeps(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Precision and coverage against each stage's threshold, one column per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 7), squeeze=False)
    for col, res in enumerate(results):
        for row, stage in enumerate(("match", "classifier")):
            ax = axes[row][col]
            pts = res["sweeps"][stage]
            xs = [p["threshold"] for p in pts]
            ax.plot(xs, [p["precision"] if p["precision"] is not None else np.nan for p in pts], label="precision")
            ax.plot(xs, [p["coverage"] for p in pts], label="coverage")
            ax.plot(xs, [p["small_share"] for p in pts], label="share routed small", linestyle=":")
            target = res.get("target_precision")
            if target:
                ax.axhline(target, color="grey", linewidth=0.8, linestyle="--", label=f"target {target}")
            chosen = res["sweeps"]["calibrated"][stage]
            if chosen is not None:
                ax.axvline(chosen, color="red", linewidth=0.8, label=f"calibrated {chosen:.3f}")
            ax.set_title(f"{Path(res['dataset']).name}: {stage} threshold")
            ax.set_xlabel("threshold")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower left")
    save_figure(fig, path)


def print_tables(report: dict[str, Any], console: Console) -> None:
    """The figures as tables."""
    t = Table("dataset", "router", "precision", "coverage", "recall (truly simple)", "small share", "follow-ups small",
              "wrong", title="Router on held-out data")
    for res in report["datasets"]:
        for name, v in res["variants"].items():
            t.add_row(Path(res["dataset"]).name, name, fmt(v["precision"], 4), fmt(v["coverage"]),
                      fmt(v["recall_truly_simple"]), fmt(v["small_share"]), fmt(v["follow_ups_small_share"]),
                      str(v["wrong_small"]))
    console.print(t)
    lt = Table("dataset", "decide p50 / p99 ms (with embedding)", "without embedding", "embedder alone",
               "p99 ratio to embedder", "lookup matrix p99", "lookup qdrant-edge p99", title="Decision latency (single requests)")
    for res in report["datasets"]:
        lat, lk = res["latency"], res["lookup"]
        lt.add_row(
            Path(res["dataset"]).name,
            f"{lat['with_embedding_ms']['p50']:.2f} / {lat['with_embedding_ms']['p99']:.2f}",
            f"{lat['without_embedding_ms']['p50']:.3f} / {lat['without_embedding_ms']['p99']:.3f}",
            f"{lat['embedder_alone_ms']['p50']:.2f} / {lat['embedder_alone_ms']['p99']:.2f}",
            f"{lat['p99_ratio_to_embedder']:.2f}",
            f"{lk['matrix_ms']['p99']:.3f}", f"{lk['qdrant_edge_ms']['p99']:.3f}",
        )
    console.print(lt)


def run_router_bench(
    settings: OdiaSettings,
    datasets: Sequence[Path],
    out_dir: Path,
    *,
    split: SplitOptions = SplitOptions(),
    latency_requests: int = 1000,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the benchmark on each dataset; writes ``router.json`` and ``router_thresholds.png``."""
    console = console or Console()

    def one(path: Path, embedder: Embedder, work: Path) -> dict[str, Any]:
        res = bench_dataset(settings, path, embedder, work, split, latency_requests=latency_requests, console=console)
        res["target_precision"] = settings.router.target_precision
        return res

    embedder, results, seconds = each_dataset(settings, datasets, out_dir / "work" / "router", one)
    report = write_report(out_dir / "router.json", {
        "embedder": embedder.model_id,
        "target_precision": settings.router.target_precision,
        "router_settings": settings.router.model_dump(mode="json"),
        "seconds": seconds,
        "datasets": results,
    })
    plot_sweeps(results, out_dir / "router_thresholds.png")
    print_tables(report, console)
    console.print(f"wrote {out_dir / 'router.json'} and {out_dir / 'router_thresholds.png'}")
    return report
