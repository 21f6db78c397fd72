"""Cluster index on qdrant-client: a Qdrant server by URL (production), or local mode for tests.

``location`` is an ``http(s)://`` URL, ``":memory:"``, or a directory (qdrant-client local mode,
brute-force numpy: fine for tests and small stores, slow beyond ~10k clusters, one process).
The embedder id and dim live in the collection's metadata (``odia_embedder_id``, ``odia_dim``;
Qdrant >= 1.16). On a server, payload keyword indexes are created and HNSW is built by the
server's background optimizer, so ``optimize()`` and ``flush()`` have nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from odia_stream.store._common import check_limit
from odia_stream.store.base import CheckedPoint, ClusterIndex, Matches
from odia_stream.store.types import (
    KEYWORD_FIELDS,
    ClusterStoreError,
    EmbedderMismatchError,
    EmbedderSpec,
)
from odia_stream.tls import verifying_context

META_EMBEDDER = "odia_embedder_id"
META_DIM = "odia_dim"
META_FORMAT = "odia_format"
FORMAT = "odia-cluster-index/1"


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _filter(matches: Matches) -> models.Filter | None:
    conds: list[models.Condition] = [
        models.FieldCondition(key=key, match=models.MatchValue(value=value)) for key, value in matches
    ]
    return models.Filter(must=conds) if conds else None


class QdrantServerClusterIndex(ClusterIndex):
    """``ClusterIndex`` on a Qdrant collection (cosine) through qdrant-client."""

    def __init__(
        self, location: str, collection: str, embedder_id: str, dim: int, api_key: str | None = None,
        *, timeout: int | None = None, upsert_batch_size: int = 512, ca_file: Path | None = None,
    ) -> None:
        """Connect and open (or create) ``collection``.

        Args:
            location: ``http(s)://host:port`` of a server, ``":memory:"``, or a local directory.
            collection: collection name.
            embedder_id: id of the embedder whose vectors the collection holds.
            dim: vector dimension.
            api_key: server API key (ignored in local mode).
            timeout: request timeout in seconds (server only).
            ca_file: CA bundle of an ``https`` server's certificate (default: the system's; always verified).
            upsert_batch_size: points per upsert request.

        Raises:
            EmbedderMismatchError: the collection was built with another embedder id or dim.
            ClusterStoreError: the collection exists without odia-stream metadata.
        """
        super().__init__(embedder_id, dim)
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty string, got {collection!r}")
        if not isinstance(location, str) or not location:
            raise ValueError(f"location must be a URL, ':memory:' or a path, got {location!r}")
        self.location = location
        self.collection = collection
        self.upsert_batch_size = check_limit(upsert_batch_size)
        self.is_local = not _is_url(location)
        if _is_url(location):
            self._client = QdrantClient(url=location, api_key=api_key, timeout=timeout, verify=verifying_context(ca_file))
        elif location == ":memory:":
            self._client = QdrantClient(location=":memory:")
        else:
            Path(location).mkdir(parents=True, exist_ok=True)
            self._client = QdrantClient(path=location)
        self._set_up(self._ensure_collection)

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

    # -- storage calls (see ClusterIndex) -------------------------------------------------

    def _upsert(self, points: Sequence[CheckedPoint]) -> None:
        for start in range(0, len(points), self.upsert_batch_size):
            batch = [
                models.PointStruct(id=cid, vector=vec.tolist(), payload=payload)
                for cid, vec, payload in points[start : start + self.upsert_batch_size]
            ]
            self._client.upsert(self.collection, points=batch, wait=True)

    def _set_payload(self, cluster_id: int, payload: dict[str, Any]) -> None:
        self._client.set_payload(self.collection, payload=payload, points=[cluster_id], wait=True)

    def _delete(self, cluster_ids: list[int]) -> None:
        selector = models.PointIdsList(points=list[Any](cluster_ids))
        self._client.delete(self.collection, points_selector=selector, wait=True)

    def _search(self, vector: np.ndarray, matches: Matches, limit: int) -> Sequence[Any]:
        response = self._client.query_points(
            self.collection,
            query=vector.tolist(),
            query_filter=_filter(matches),
            limit=limit,
            with_payload=True,
            with_vectors=False,
        )
        return response.points

    def _search_batch(
        self, vectors: np.ndarray, matches: Sequence[Matches], limit: int
    ) -> list[Sequence[Any]]:
        requests = [
            models.QueryRequest(
                query=row.tolist(), filter=_filter(m), limit=limit, with_payload=True, with_vector=False
            )
            for row, m in zip(vectors, matches, strict=True)
        ]
        responses = self._client.query_batch_points(self.collection, requests=requests)
        return [r.points for r in responses]

    def _retrieve(self, cluster_ids: list[int], *, with_data: bool) -> Sequence[Any]:
        return self._client.retrieve(
            self.collection, cluster_ids, with_payload=with_data, with_vectors=with_data
        )

    def _count(self) -> int:
        return int(self._client.count(self.collection, exact=True).count)

    def _scroll(self, offset: Any, limit: int) -> tuple[Sequence[Any], Any]:
        return self._client.scroll(
            self.collection, limit=limit, offset=offset, with_payload=True, with_vectors=True
        )

    def _optimize(self) -> None:
        """Nothing to do: the server indexes in the background; local mode has no index."""

    def _flush(self) -> None:
        """Nothing to do: writes use ``wait=True`` (server WAL) / local mode persists each write."""

    def _release(self) -> None:
        self._client.close()

    def _repr_args(self) -> list[str]:
        return [repr(self.location), repr(self.collection), repr(self.embedder_id), f"dim={self.dim}"]
