"""Cluster index on qdrant-edge-py: Qdrant's own Rust engine, in-process, persisted in a directory.

Layout of ``path``::

    path/cluster_index.json   embedder id + dim (+ format), written atomically before the shard
    path/shard/               the EdgeShard (WAL, segments, edge_config.json)

Index policy (measured on 2 cores, 384 dims, 1000 scopes; see docs/cluster_store.md):

* ``index="plain"`` (default): segments are never HNSW-indexed (``indexing_threshold=0``).
  Scope-filtered top-5 search is answered through the ``scope`` keyword index and scores only
  that scope's clusters (~0.07 ms at 100k clusters, no optimize needed); unfiltered search is a
  brute-force scan (~7 ms at 100k). ``optimize()`` only vacuums deleted/moved points (~1 s at
  100k) and is called automatically every ``auto_optimize_every`` mutations (default 20,000).
* ``index="hnsw"``: ``optimize()`` builds HNSW graphs (~5 s at 10k, ~100 s at 100k, and it
  holds the GIL: a background thread does not help). Only unfiltered or very large scopes gain
  from it (scoped search gets slower: 0.38 vs 0.08 ms at 100k), so it is never run implicitly:
  schedule ``optimize()`` (start-up, off-peak).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    MatchValue,
    PayloadSchemaType,
    Point,
    Query,
    QueryBatchRequest,
    QueryRequest,
    ScrollRequest,
    UpdateOperation,
)

from odia_stream.atomic_files import write_json_atomic
from odia_stream.store.base import CheckedPoint, ClusterIndex, Matches
from odia_stream.store.types import (
    KEYWORD_FIELDS,
    ClusterStoreError,
    EmbedderMismatchError,
    EmbedderSpec,
)

META_FILE = "cluster_index.json"
SHARD_DIR = "shard"
FORMAT = "odia-cluster-index/1"
#: Mutations (upserted points, deleted ids, payload updates) between automatic vacuums in plain mode.
DEFAULT_AUTO_OPTIMIZE_EVERY = 20_000
#: Qdrant's default indexing threshold (KB of vectors in a segment before HNSW is built).
HNSW_INDEXING_THRESHOLD_KB = 10_000

IndexMode = Literal["plain", "hnsw"]


def read_store_meta(path: Path) -> dict[str, Any] | None:
    """The metadata of an edge store directory, or ``None`` when it has none."""
    meta_path = Path(path) / META_FILE
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        EmbedderSpec(str(meta["embedder_id"]), int(meta["dim"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClusterStoreError(f"unreadable cluster-store metadata {meta_path}: {exc}") from exc
    return dict(meta)


def _filter(matches: Matches) -> Filter | None:
    conds: list[Any] = [FieldCondition(key, match=MatchValue(value)) for key, value in matches]
    return Filter(must=conds) if conds else None


def _query(vector: np.ndarray, matches: Matches, limit: int) -> QueryRequest:
    return QueryRequest(
        limit=limit,
        query=Query.Nearest(vector.tolist()),
        filter=_filter(matches),
        with_payload=True,
        with_vector=False,
    )


class EdgeClusterIndex(ClusterIndex):
    """``ClusterIndex`` on an in-process qdrant-edge shard (cosine), persisted in ``path``.

    One open instance per directory (the shard's WAL is locked). Not meant for concurrent use
    from several threads.
    """

    def __init__(
        self,
        path: Path | str,
        embedder_id: str,
        dim: int,
        *,
        index: IndexMode = "plain",
        auto_optimize_every: int | None = None,
    ) -> None:
        """Open (or create) the store at ``path``.

        Args:
            path: store directory (created if absent).
            embedder_id: id of the embedder whose vectors the store holds.
            dim: vector dimension.
            index: ``"plain"`` (keyword-index + brute force, cheap optimize) or ``"hnsw"``.
            auto_optimize_every: mutations between automatic ``optimize()`` calls; ``None``
                means 20,000 in plain mode and never in hnsw mode; ``0`` disables.

        Raises:
            EmbedderMismatchError: the store was built with another embedder id or dim.
            ClusterStoreError: the directory holds a shard without metadata.
        """
        super().__init__(embedder_id, dim)
        if index not in ("plain", "hnsw"):
            raise ValueError(f"index must be 'plain' or 'hnsw', got {index!r}")
        self.index_mode: IndexMode = index
        if auto_optimize_every is None:
            auto_optimize_every = DEFAULT_AUTO_OPTIMIZE_EVERY if index == "plain" else 0
        if auto_optimize_every < 0:
            raise ValueError(f"auto_optimize_every must be >= 0, got {auto_optimize_every}")
        self.auto_optimize_every = int(auto_optimize_every)
        self.path = Path(path)
        self._mutations = 0
        #: Seconds the last ``optimize()`` took (``None`` before the first).
        self.last_optimize_s: float | None = None

        self.path.mkdir(parents=True, exist_ok=True)
        shard_dir = self.path / SHARD_DIR
        requested = EmbedderSpec(self.embedder_id, self.dim)
        meta = read_store_meta(self.path)
        shard_exists = (shard_dir / "edge_config.json").exists()
        if meta is None:
            if shard_exists:
                raise ClusterStoreError(
                    f"{shard_dir} holds a shard but {self.path / META_FILE} is missing: "
                    "refusing to guess which embedder its vectors came from"
                )
            write_json_atomic(
                self.path / META_FILE,
                {
                    "format": FORMAT,
                    "embedder_id": self.embedder_id,
                    "dim": self.dim,
                    "distance": "cosine",
                    "keyword_fields": list(KEYWORD_FIELDS),
                    "created_at": datetime.now(UTC).isoformat(),
                },
            )
        else:
            stored = EmbedderSpec(str(meta["embedder_id"]), int(meta["dim"]))
            if stored != requested:
                raise EmbedderMismatchError(stored=stored, requested=requested, where=str(self.path))

        config = EdgeConfig(
            vectors=EdgeVectorParams(size=self.dim, distance=Distance.Cosine),
            optimizers=EdgeOptimizersConfig(
                indexing_threshold=0 if index == "plain" else HNSW_INDEXING_THRESHOLD_KB
            ),
        )
        try:
            if shard_exists:
                self._shard = EdgeShard.load(str(shard_dir), config)
            else:
                self._shard = EdgeShard.create(str(shard_dir), config)
        except Exception as exc:  # qdrant_edge raises bare Exception
            raise ClusterStoreError(f"cannot open edge shard at {shard_dir}: {exc}") from exc
        self._set_up(self._ensure_keyword_indexes)

    def _ensure_keyword_indexes(self) -> None:
        present = set(self._shard.info().payload_schema)
        for field_name in KEYWORD_FIELDS:
            if field_name not in present:
                self._shard.update(UpdateOperation.create_field_index(field_name, PayloadSchemaType.Keyword))

    def _mutated(self, n: int) -> None:
        self._mutations += n
        if self.auto_optimize_every and self._mutations >= self.auto_optimize_every:
            self.optimize()

    # -- storage calls (see ClusterIndex) -------------------------------------------------

    def _upsert(self, points: Sequence[CheckedPoint]) -> None:
        edge_points = [Point(cid, vec.tolist(), payload) for cid, vec, payload in points]
        self._shard.update(UpdateOperation.upsert_points(edge_points))
        self._mutated(len(edge_points))

    def _set_payload(self, cluster_id: int, payload: dict[str, Any]) -> None:
        self._shard.update(UpdateOperation.set_payload([cluster_id], payload))
        self._mutated(1)

    def _delete(self, cluster_ids: list[int]) -> None:
        self._shard.update(UpdateOperation.delete_points(list[Any](cluster_ids)))
        self._mutated(len(cluster_ids))

    def _search(self, vector: np.ndarray, matches: Matches, limit: int) -> Sequence[Any]:
        return self._shard.query(_query(vector, matches, limit))

    def _search_batch(
        self, vectors: np.ndarray, matches: Sequence[Matches], limit: int
    ) -> list[Sequence[Any]]:
        requests = [_query(row, m, limit) for row, m in zip(vectors, matches, strict=True)]
        return list(self._shard.query_batch(QueryBatchRequest(requests)))

    def _retrieve(self, cluster_ids: list[int], *, with_data: bool) -> Sequence[Any]:
        return self._shard.retrieve(list[Any](cluster_ids), with_data, with_data)

    def _count(self) -> int:
        return int(self._shard.count(CountRequest(exact=True)))

    def _scroll(self, offset: Any, limit: int) -> tuple[Sequence[Any], Any]:
        request = ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
        return self._shard.scroll(request)

    def _optimize(self) -> None:
        """Run the shard's optimizers to completion (blocking; see the module docstring)."""
        start = time.perf_counter()
        self._shard.optimize()
        self.last_optimize_s = time.perf_counter() - start
        self._mutations = 0

    def _flush(self) -> None:
        self._shard.flush()

    def _release(self) -> None:
        self._shard.close()

    def _repr_args(self) -> list[str]:
        return [repr(str(self.path)), repr(self.embedder_id), f"dim={self.dim}", self.index_mode]

    # -- edge only ----------------------------------------------------------------------------

    def segments(self) -> dict[str, int]:
        """Shard statistics: ``segments``, ``points``, ``indexed_vectors``."""
        self._check_open()
        info = self._shard.info()
        return {
            "segments": int(info.segments_count),
            "points": int(info.points_count),
            "indexed_vectors": int(info.indexed_vectors_count),
        }
