"""Per-event clustering cost as the store grows (10k vs 100k clusters): target nearly flat.

The store is filled with synthetic clusters in the same scope as the measured events (so every
nearest-cluster search has to consider them), the measured events' embeddings are cached
beforehand (so the figure is the clustering cost, not the embedder's), and the same real
batches are processed at each size.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from odia_stream.clustering import OffsetAlignedBatcher, OnlineClusterLearner, SourcedItem
from odia_stream.clustering.factory import open_learner
from odia_stream.clustering.records import Cluster
from odia_stream.embedding import CachedEmbedder, Embedder
from odia_stream.keys import scope_of, stable_id
from odia_stream.settings import OdiaSettings
from odia_stream.store import ClusterPoint
from schemas import FCLogEvent

#: Scopes the synthetic clusters are spread over in the second layout.
SPREAD_SCOPES = 1000


def seed_synthetic_clusters(
    learner: OnlineClusterLearner, n: int, scopes: Sequence[str], seed: int = 0, chunk: int = 5000
) -> None:
    """Add ``n`` random clusters, spread round-robin over ``scopes``, to the learner's memory and
    its vector store."""
    rng = np.random.default_rng(seed)
    dim = learner.embedder.dim
    for start in tqdm(range(0, n, chunk), desc=f"seeding {n} clusters", unit="chunk", leave=False):
        size = min(chunk, n - start)
        vecs = rng.normal(size=(size, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        points = []
        for i in range(size):
            cid = stable_id("synthetic", str(start + i))
            scope = scopes[(start + i) % len(scopes)]
            learner.clusters[cid] = Cluster(cid, scope, "bench", vecs[i] * 10, weight=10, size=10, version=1)
            points.append(
                ClusterPoint(cid, vecs[i], {"scope": scope, "app": "bench", "label": "undecided", "dominant_function": "", "size": 10, "version": 1})
            )
        learner.index.upsert(points)
    learner.index.flush()


def measure_clustering_cost(
    embedder: Embedder,
    events: list[FCLogEvent],
    base_settings: OdiaSettings,
    work_dir: Path,
    sizes: tuple[int, ...] = (10_000, 100_000),
) -> dict[str, Any]:
    """Milliseconds per event of ``process_batch`` at each store size (embeddings pre-cached)."""
    cached = embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
    # A fresh directory per run: a learner reopened on an earlier run's state would skip every
    # batch as already applied and measure nothing.
    work_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="cost-", dir=work_dir))
    try:
        return _measure(cached, events, base_settings, run_dir, sizes)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _batches(events: list[FCLogEvent], batch_size: int) -> list[list[SourcedItem[FCLogEvent]]]:
    """``events`` as one partition's offset-aligned micro-batches."""
    batcher: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(batch_size)
    out: list[list[SourcedItem[FCLogEvent]]] = []
    for i, ev in enumerate(events):
        out += batcher.add(SourcedItem("bench", 0, i, ev))
    return out + batcher.flush()


def _measure(
    cached: CachedEmbedder,
    events: list[FCLogEvent],
    base_settings: OdiaSettings,
    work_dir: Path,
    sizes: tuple[int, ...],
) -> dict[str, Any]:
    mode = base_settings.clustering.scope
    scope = scope_of(events[0], mode)
    # Warm the embedding cache with exactly what the learner embeds (templated queries, as the
    # dictionaries grow), by one pass through a throwaway learner.
    warm = open_learner(base_settings.model_copy(update={"state_dir": work_dir / "warm-up"}), embedder=cached)
    try:
        for b in _batches(events, base_settings.clustering.batch_size):
            warm.process_batch(b)
    finally:
        warm.close()
    layouts = {
        # Worst case: every cluster in the measured events' own scope (an exact scan per search).
        "own scope": [scope],
        # Closer to production, where a scope is an app x tool set x context: the same number of
        # clusters over SPREAD_SCOPES scopes, the events' own among them.
        f"{SPREAD_SCOPES} scopes": [scope, *(f"synthetic-scope-{k}" for k in range(1, SPREAD_SCOPES))],
    }
    rows = []
    for (layout, scopes), n in ((item, n) for item in layouts.items() for n in sizes):
        s = base_settings.model_copy(update={"state_dir": work_dir / f"clusters-{n}-{len(scopes)}"})
        learner = open_learner(s, embedder=cached)
        try:
            seed_synthetic_clusters(learner, n, scopes)
            t_opt = time.perf_counter()
            learner.index.optimize()
            optimize_s = time.perf_counter() - t_opt
            batches = _batches(events, s.clustering.batch_size)
            misses = cached.misses
            t0 = time.perf_counter()
            accepted = sum(learner.process_batch(b).counts["accepted"] for b in batches)
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "layout": layout,
                    "clusters_in_store": learner.index.count(),
                    "events": len(events),
                    "events_applied": accepted,
                    "ms_per_event": 1000 * seconds / len(events),
                    "optimize_s": optimize_s,
                    "embedding_cache_misses": cached.misses - misses,
                }
            )
        finally:
            learner.close()
    for layout in layouts:
        mine = [r for r in rows if r["layout"] == layout]
        base = mine[0]["ms_per_event"]
        for r in mine:
            r["ratio_to_smallest"] = r["ms_per_event"] / base if base else float("nan")
    return {"rows": rows, "scope": scope, "embedder": cached.model_id}
