"""Per-event clustering cost as the store grows (10k vs 100k clusters): target nearly flat.

The store is filled with synthetic clusters in the same scope as the measured events (so every
nearest-cluster search has to consider them), the measured events' embeddings are cached
beforehand (so the figure is the clustering cost, not the embedder's), and the same real
batches are processed at each size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from odia_stream.clustering import OffsetAlignedBatcher, OnlineClusterLearner, SourcedItem
from odia_stream.clustering.factory import open_learner
from odia_stream.clustering.learner import stable_id
from odia_stream.clustering.records import Cluster
from odia_stream.context import scope_key
from odia_stream.embedding import CachedEmbedder, Embedder
from odia_stream.settings import OdiaSettings
from odia_stream.store import ClusterPoint
from schemas import FCLogEvent


def seed_synthetic_clusters(learner: OnlineClusterLearner, n: int, scope: str, seed: int = 0, chunk: int = 5000) -> None:
    """Add ``n`` random clusters of ``scope`` to the learner's memory and its vector store."""
    rng = np.random.default_rng(seed)
    dim = learner.embedder.dim
    for start in tqdm(range(0, n, chunk), desc=f"seeding {n} clusters", unit="chunk", leave=False):
        size = min(chunk, n - start)
        vecs = rng.normal(size=(size, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        points = []
        for i in range(size):
            cid = stable_id("synthetic", str(start + i))
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
    mode = base_settings.clustering.scope
    scope = scope_key(events[0].app, events[0].tools, events[0].history, mode)

    def batches_of(batch_size: int) -> list[list[SourcedItem[FCLogEvent]]]:
        batcher: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(batch_size)
        out = []
        for i, ev in enumerate(events):
            out += batcher.add(SourcedItem("bench", 0, i, ev))
        return out + batcher.flush()

    # Warm the embedding cache with exactly what the learner embeds (templated queries, as the
    # dictionaries grow), by one pass through a throwaway learner.
    warm = open_learner(base_settings.model_copy(update={"state_dir": work_dir / "warm-up"}), embedder=cached)
    try:
        for b in batches_of(base_settings.clustering.batch_size):
            warm.process_batch(b)
    finally:
        warm.close()
    rows = []
    for n in sizes:
        s = base_settings.model_copy(update={"state_dir": work_dir / f"clusters-{n}"})
        learner = open_learner(s, embedder=cached)
        try:
            seed_synthetic_clusters(learner, n, scope)
            t_opt = time.perf_counter()
            learner.index.optimize()
            optimize_s = time.perf_counter() - t_opt
            batches = batches_of(s.clustering.batch_size)
            misses = cached.misses
            t0 = time.perf_counter()
            for b in batches:
                learner.process_batch(b)
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "clusters_in_store": learner.index.count(),
                    "events": len(events),
                    "ms_per_event": 1000 * seconds / len(events),
                    "optimize_s": optimize_s,
                    "embedding_cache_misses": cached.misses - misses,
                }
            )
        finally:
            learner.close()
    base = rows[0]["ms_per_event"]
    for r in rows:
        r["ratio_to_smallest"] = r["ms_per_event"] / base if base else float("nan")
    return {"rows": rows, "scope": scope, "embedder": embedder.model_id}
