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
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
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

from odia_stream.store._common import (
    ClosableStore,
    as_vector,
    check_cluster_id,
    check_dim,
    check_embedder_id,
    check_ids,
    check_limit,
    check_matrix,
    check_min_score,
    check_payload_update,
    check_point,
    check_scope,
    check_vector,
    check_where,
    keep_above,
    point_id,
)
from odia_stream.store.types import (
    KEYWORD_FIELDS,
    ClusterHit,
    ClusterPoint,
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


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to ``path`` atomically (temp file, fsync, rename, fsync dir)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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


def _vector_of(raw: Any) -> np.ndarray:
    """The default (unnamed) vector of an edge record."""
    if isinstance(raw, dict):
        raw = raw.get("", next(iter(raw.values())))
    return as_vector(raw)


class EdgeClusterIndex(ClosableStore):
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
        self.embedder_id = check_embedder_id(embedder_id)
        self.dim = check_dim(dim)
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
            _write_json_atomic(
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
        try:
            self._ensure_keyword_indexes()
        except BaseException:
            self._shard.close()
            self._closed = True
            raise

    # -- setup -------------------------------------------------------------------------------

    def _ensure_keyword_indexes(self) -> None:
        present = set(self._shard.info().payload_schema)
        for field_name in KEYWORD_FIELDS:
            if field_name not in present:
                self._shard.update(UpdateOperation.create_field_index(field_name, PayloadSchemaType.Keyword))

    def _filter(self, scope: str | None, where: Mapping[str, str]) -> Filter | None:
        conds: list[Any] = []
        if scope is not None:
            conds.append(FieldCondition("scope", match=MatchValue(check_scope(scope))))
        conds.extend(FieldCondition(key, match=MatchValue(value)) for key, value in where.items())
        return Filter(must=conds) if conds else None

    def _mutated(self, n: int) -> None:
        self._mutations += n
        if self.auto_optimize_every and self._mutations >= self.auto_optimize_every:
            self.optimize()

    @staticmethod
    def _hits(points: Sequence[Any], min_score: float | None) -> list[ClusterHit]:
        hits = [ClusterHit(point_id(p.id), float(p.score), dict(p.payload or {})) for p in points]
        return keep_above(hits, min_score)

    # -- writes ------------------------------------------------------------------------------

    def upsert(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters (vector and whole payload); all validated first."""
        self._check_open()
        checked = [check_point(p, self.dim) for p in points]
        if not checked:
            return
        edge_points = [Point(cid, vec.tolist(), payload) for cid, vec, payload in checked]
        self._shard.update(UpdateOperation.upsert_points(edge_points))
        self._mutated(len(edge_points))

    def set_payload(self, cluster_id: int, payload: Mapping[str, Any]) -> None:
        """Merge ``payload`` into the cluster's payload; ``KeyError`` if it does not exist."""
        self._check_open()
        cid = check_cluster_id(cluster_id)
        update = check_payload_update(payload)
        if not self._shard.retrieve([cid], False, False):
            raise KeyError(f"no cluster {cid} in the store")
        if update:
            self._shard.update(UpdateOperation.set_payload([cid], update))
            self._mutated(1)

    def delete(self, cluster_ids: Sequence[int]) -> None:
        """Delete clusters; missing ids are ignored."""
        self._check_open()
        ids = check_ids(cluster_ids)
        if ids:
            self._shard.update(UpdateOperation.delete_points(list[Any](ids)))
            self._mutated(len(ids))

    # -- reads -------------------------------------------------------------------------------

    def search(
        self,
        vector: np.ndarray,
        *,
        scope: str | None = None,
        limit: int = 5,
        min_score: float | None = None,
        where: Mapping[str, str] | None = None,
    ) -> list[ClusterHit]:
        """Nearest clusters by cosine similarity (best first), within ``scope`` if given."""
        self._check_open()
        vec = check_vector(vector, self.dim)
        request = QueryRequest(
            limit=check_limit(limit),
            query=Query.Nearest(vec.tolist()),
            filter=self._filter(scope, check_where(where)),
            with_payload=True,
            with_vector=False,
        )
        return self._hits(self._shard.query(request), check_min_score(min_score))

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        scopes: Sequence[str | None],
        limit: int = 5,
        min_score: float | None = None,
    ) -> list[list[ClusterHit]]:
        """One ``search`` per row of ``vectors`` with its scope, planned as one batch."""
        self._check_open()
        mat = check_matrix(vectors, self.dim)
        scopes = list(scopes)
        if len(scopes) != mat.shape[0]:
            raise ValueError(f"got {mat.shape[0]} vectors but {len(scopes)} scopes")
        lim, threshold = check_limit(limit), check_min_score(min_score)
        if not scopes:
            return []
        requests = [
            QueryRequest(
                limit=lim,
                query=Query.Nearest(row.tolist()),
                filter=self._filter(scope, {}),
                with_payload=True,
                with_vector=False,
            )
            for row, scope in zip(mat, scopes, strict=True)
        ]
        results = self._shard.query_batch(QueryBatchRequest(requests))
        return [self._hits(r, threshold) for r in results]

    def get(self, cluster_ids: Sequence[int]) -> list[ClusterPoint]:
        """Clusters by id in the order asked (duplicates once); missing ids are skipped."""
        self._check_open()
        ids = list(dict.fromkeys(check_ids(cluster_ids)))
        if not ids:
            return []
        records = {point_id(r.id): r for r in self._shard.retrieve(list[Any](ids), True, True)}
        return [
            ClusterPoint(cid, _vector_of(records[cid].vector), dict(records[cid].payload or {}))
            for cid in ids
            if cid in records
        ]

    def count(self) -> int:
        """Number of clusters stored."""
        self._check_open()
        return int(self._shard.count(CountRequest(exact=True)))

    def iter_points(self, batch_size: int = 1000) -> Iterator[ClusterPoint]:
        """Every cluster by ascending id, ``batch_size`` per scroll page."""
        self._check_open()
        size = check_limit(batch_size)
        offset: Any = None
        while True:
            records, offset = self._shard.scroll(
                ScrollRequest(offset=offset, limit=size, with_payload=True, with_vector=True)
            )
            for r in records:
                yield ClusterPoint(point_id(r.id), _vector_of(r.vector), dict(r.payload or {}))
            if offset is None:
                return

    def segments(self) -> dict[str, int]:
        """Shard statistics: ``segments``, ``points``, ``indexed_vectors``."""
        self._check_open()
        info = self._shard.info()
        return {
            "segments": int(info.segments_count),
            "points": int(info.points_count),
            "indexed_vectors": int(info.indexed_vectors_count),
        }

    # -- maintenance -------------------------------------------------------------------------

    def optimize(self) -> None:
        """Run the shard's optimizers to completion (blocking; see the module docstring)."""
        self._check_open()
        start = time.perf_counter()
        self._shard.optimize()
        self.last_optimize_s = time.perf_counter() - start
        self._mutations = 0

    def flush(self) -> None:
        """Flush the shard: every write so far is on disk when this returns."""
        self._check_open()
        self._shard.flush()

    def close(self) -> None:
        """Flush and close the shard (idempotent)."""
        if self._closed:
            return
        try:
            self._shard.flush()
        finally:
            self._shard.close()
            self._closed = True

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"EdgeClusterIndex({str(self.path)!r}, {self.embedder_id!r}, dim={self.dim}, "
            f"{self.index_mode}, {state})"
        )
