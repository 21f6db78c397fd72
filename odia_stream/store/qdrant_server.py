"""Cluster index on qdrant-client: a Qdrant server by URL (production), or local mode for tests.

``location`` is an ``http(s)://`` URL, ``":memory:"``, or a directory (qdrant-client local mode,
brute-force numpy: fine for tests and small stores, slow beyond ~10k clusters, one process).
The embedder id and dim live in the collection's metadata (``odia_embedder_id``, ``odia_dim``;
Qdrant >= 1.16). On a server, payload keyword indexes are created and HNSW is built by the
server's background optimizer, so ``optimize()`` and ``flush()`` have nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

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

META_EMBEDDER = "odia_embedder_id"
META_DIM = "odia_dim"
META_FORMAT = "odia_format"
FORMAT = "odia-cluster-index/1"


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _vector_of(raw: Any) -> np.ndarray:
    if isinstance(raw, dict):
        raw = raw.get("", next(iter(raw.values())))
    return as_vector(raw)


class QdrantServerClusterIndex(ClosableStore):
    """``ClusterIndex`` on a Qdrant collection (cosine) through qdrant-client."""

    def __init__(
        self,
        location: str,
        collection: str,
        embedder_id: str,
        dim: int,
        api_key: str | None = None,
        *,
        timeout: int | None = None,
        upsert_batch_size: int = 512,
    ) -> None:
        """Connect and open (or create) ``collection``.

        Args:
            location: ``http(s)://host:port`` of a server, ``":memory:"``, or a local directory.
            collection: collection name.
            embedder_id: id of the embedder whose vectors the collection holds.
            dim: vector dimension.
            api_key: server API key (ignored in local mode).
            timeout: request timeout in seconds (server only).
            upsert_batch_size: points per upsert request.

        Raises:
            EmbedderMismatchError: the collection was built with another embedder id or dim.
            ClusterStoreError: the collection exists without odia-stream metadata.
        """
        self.embedder_id = check_embedder_id(embedder_id)
        self.dim = check_dim(dim)
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty string, got {collection!r}")
        if not isinstance(location, str) or not location:
            raise ValueError(f"location must be a URL, ':memory:' or a path, got {location!r}")
        self.location = location
        self.collection = collection
        self.upsert_batch_size = check_limit(upsert_batch_size)
        self.is_local = not _is_url(location)
        if _is_url(location):
            self._client = QdrantClient(url=location, api_key=api_key, timeout=timeout)
        elif location == ":memory:":
            self._client = QdrantClient(location=":memory:")
        else:
            Path(location).mkdir(parents=True, exist_ok=True)
            self._client = QdrantClient(path=location)
        try:
            self._ensure_collection()
        except BaseException:
            self._client.close()
            self._closed = True
            raise

    # -- setup -------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.location} collection {self.collection!r}"

    def _check_existing(self) -> None:
        info = self._client.get_collection(self.collection)
        meta = info.config.metadata or {}
        if META_EMBEDDER not in meta or META_DIM not in meta:
            raise ClusterStoreError(
                f"{self._where()} exists without odia-stream metadata ({META_EMBEDDER}/{META_DIM}): "
                "created by something else, or by a Qdrant server older than 1.16 that drops "
                "collection metadata; refusing to guess which embedder its vectors came from"
            )
        stored = EmbedderSpec(str(meta[META_EMBEDDER]), int(meta[META_DIM]))
        requested = EmbedderSpec(self.embedder_id, self.dim)
        if stored != requested:
            raise EmbedderMismatchError(stored=stored, requested=requested, where=self._where())
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise ClusterStoreError(f"{self._where()} does not hold one unnamed dense vector")
        if params.size != self.dim or params.distance != models.Distance.COSINE:
            raise ClusterStoreError(
                f"{self._where()} has vectors of size {params.size} / {params.distance}, "
                f"metadata says dim {self.dim} / cosine"
            )
        if not self.is_local:
            missing = [f for f in KEYWORD_FIELDS if f not in (info.payload_schema or {})]
            for field_name in missing:
                self._client.create_payload_index(
                    self.collection, field_name, models.PayloadSchemaType.KEYWORD, wait=True
                )

    def _ensure_collection(self) -> None:
        if not self._client.collection_exists(self.collection):
            try:
                self._client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE),
                    metadata={META_EMBEDDER: self.embedder_id, META_DIM: self.dim, META_FORMAT: FORMAT},
                )
            except Exception:
                # Lost a creation race to another client: fall through to the check.
                if not self._client.collection_exists(self.collection):
                    raise
        # Local mode has no payload indexes (filters scan); the server gets keyword indexes.
        self._check_existing()

    @staticmethod
    def _filter(scope: str | None, where: Mapping[str, str]) -> models.Filter | None:
        conds: list[models.Condition] = []
        if scope is not None:
            conds.append(
                models.FieldCondition(key="scope", match=models.MatchValue(value=check_scope(scope)))
            )
        conds.extend(
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in where.items()
        )
        return models.Filter(must=conds) if conds else None

    @staticmethod
    def _hits(points: Sequence[models.ScoredPoint], min_score: float | None) -> list[ClusterHit]:
        hits = [ClusterHit(point_id(p.id), float(p.score), dict(p.payload or {})) for p in points]
        return keep_above(hits, min_score)

    # -- writes ------------------------------------------------------------------------------

    def upsert(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters (vector and whole payload); all validated first."""
        self._check_open()
        checked = [check_point(p, self.dim) for p in points]
        for start in range(0, len(checked), self.upsert_batch_size):
            batch = [
                models.PointStruct(id=cid, vector=vec.tolist(), payload=payload)
                for cid, vec, payload in checked[start : start + self.upsert_batch_size]
            ]
            self._client.upsert(self.collection, points=batch, wait=True)

    def set_payload(self, cluster_id: int, payload: Mapping[str, Any]) -> None:
        """Merge ``payload`` into the cluster's payload; ``KeyError`` if it does not exist."""
        self._check_open()
        cid = check_cluster_id(cluster_id)
        update = check_payload_update(payload)
        if not self._client.retrieve(self.collection, [cid], with_payload=False, with_vectors=False):
            raise KeyError(f"no cluster {cid} in the store")
        if update:
            self._client.set_payload(self.collection, payload=update, points=[cid], wait=True)

    def delete(self, cluster_ids: Sequence[int]) -> None:
        """Delete clusters; missing ids are ignored."""
        self._check_open()
        ids = check_ids(cluster_ids)
        if ids:
            self._client.delete(
                self.collection, points_selector=models.PointIdsList(points=list[Any](ids)), wait=True
            )

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
        response = self._client.query_points(
            self.collection,
            query=vec.tolist(),
            query_filter=self._filter(scope, check_where(where)),
            limit=check_limit(limit),
            with_payload=True,
            with_vectors=False,
        )
        return self._hits(response.points, check_min_score(min_score))

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        scopes: Sequence[str | None],
        limit: int = 5,
        min_score: float | None = None,
    ) -> list[list[ClusterHit]]:
        """One ``search`` per row of ``vectors`` with its scope, in one request."""
        self._check_open()
        mat = check_matrix(vectors, self.dim)
        scopes = list(scopes)
        if len(scopes) != mat.shape[0]:
            raise ValueError(f"got {mat.shape[0]} vectors but {len(scopes)} scopes")
        lim, threshold = check_limit(limit), check_min_score(min_score)
        if not scopes:
            return []
        requests = [
            models.QueryRequest(
                query=row.tolist(),
                filter=self._filter(scope, {}),
                limit=lim,
                with_payload=True,
                with_vector=False,
            )
            for row, scope in zip(mat, scopes, strict=True)
        ]
        responses = self._client.query_batch_points(self.collection, requests=requests)
        return [self._hits(r.points, threshold) for r in responses]

    def get(self, cluster_ids: Sequence[int]) -> list[ClusterPoint]:
        """Clusters by id in the order asked (duplicates once); missing ids are skipped."""
        self._check_open()
        ids = list(dict.fromkeys(check_ids(cluster_ids)))
        if not ids:
            return []
        records = {
            point_id(r.id): r
            for r in self._client.retrieve(self.collection, ids, with_payload=True, with_vectors=True)
        }
        return [
            ClusterPoint(cid, _vector_of(records[cid].vector), dict(records[cid].payload or {}))
            for cid in ids
            if cid in records
        ]

    def count(self) -> int:
        """Number of clusters stored."""
        self._check_open()
        return int(self._client.count(self.collection, exact=True).count)

    def iter_points(self, batch_size: int = 1000) -> Iterator[ClusterPoint]:
        """Every cluster by ascending id, ``batch_size`` per scroll page."""
        self._check_open()
        size = check_limit(batch_size)
        offset: Any = None
        while True:
            records, offset = self._client.scroll(
                self.collection, limit=size, offset=offset, with_payload=True, with_vectors=True
            )
            for r in records:
                yield ClusterPoint(point_id(r.id), _vector_of(r.vector), dict(r.payload or {}))
            if offset is None:
                return

    # -- maintenance -------------------------------------------------------------------------

    def optimize(self) -> None:
        """Nothing to do: the server indexes in the background; local mode has no index."""
        self._check_open()

    def flush(self) -> None:
        """Nothing to do: writes use ``wait=True`` (server WAL) / local mode persists each write."""
        self._check_open()

    def close(self) -> None:
        """Close the client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._client.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"QdrantServerClusterIndex({self.location!r}, {self.collection!r}, {self.embedder_id!r}, "
            f"dim={self.dim}, {state})"
        )
