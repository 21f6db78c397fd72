"""The cluster-store contract: points, hits, the ``ClusterIndex`` protocol and its errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Payload keys indexed as exact-match keywords (the only keys ``where`` filters are fast on).
KEYWORD_FIELDS: tuple[str, ...] = ("scope", "label", "dominant_function")


@dataclass(frozen=True, eq=False)
class ClusterPoint:
    """One cluster: id, representative vector (L2-normalised by the caller) and payload.

    ``payload`` always holds ``"scope"`` (clusters are only comparable within one scope),
    and usually ``label``, ``dominant_function``, ``size``, ``version``. Compared by identity
    (the vector is an array).
    """

    cluster_id: int
    vector: np.ndarray = field(repr=False)
    payload: dict[str, Any]


@dataclass(frozen=True)
class ClusterHit:
    """A search result: cluster id, cosine similarity and the cluster's payload."""

    cluster_id: int
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class EmbedderSpec:
    """The embedder a store was built with: vectors of two models are never mixed."""

    embedder_id: str
    dim: int

    def __str__(self) -> str:
        return f"{self.embedder_id!r} (dim {self.dim})"


class ClusterStoreError(RuntimeError):
    """A cluster store cannot be used as asked (closed, corrupt metadata, foreign collection)."""


class EmbedderMismatchError(ClusterStoreError):
    """The store holds vectors of another embedder (id or dimension) than the one requested."""

    def __init__(self, *, stored: EmbedderSpec, requested: EmbedderSpec, where: str = "") -> None:
        self.stored = stored
        self.requested = requested
        place = f" at {where}" if where else ""
        super().__init__(
            f"cluster store{place} was built with embedder {stored}, but {requested} was requested; "
            "vectors of different embedders are never mixed: open another collection/path, "
            "or re-embed the clusters into a new one"
        )


@runtime_checkable
class ClusterIndex(Protocol):
    """Vector index of cluster representatives (one point per cluster, cosine similarity).

    Nearest-cluster search always runs inside the store, filtered by ``scope``.
    """

    embedder_id: str
    dim: int

    def upsert(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters (vector and whole payload)."""
        ...

    def set_payload(self, cluster_id: int, payload: Mapping[str, Any]) -> None:
        """Merge ``payload`` keys into a cluster's payload; ``KeyError`` if the cluster is absent."""
        ...

    def delete(self, cluster_ids: Sequence[int]) -> None:
        """Delete clusters; missing ids are ignored."""
        ...

    def search(
        self,
        vector: np.ndarray,
        *,
        scope: str | None = None,
        limit: int = 5,
        min_score: float | None = None,
        where: Mapping[str, str] | None = None,
    ) -> list[ClusterHit]:
        """Nearest clusters by cosine similarity, best first, optionally within one scope."""
        ...

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        scopes: Sequence[str | None],
        limit: int = 5,
        min_score: float | None = None,
    ) -> list[list[ClusterHit]]:
        """``search`` for each row of ``vectors`` (with its scope) in one call."""
        ...

    def get(self, cluster_ids: Sequence[int]) -> list[ClusterPoint]:
        """Clusters by id, in the order asked; missing ids are skipped."""
        ...

    def count(self) -> int:
        """Number of clusters stored."""
        ...

    def iter_points(self, batch_size: int = 1000) -> Iterator[ClusterPoint]:
        """Every cluster, by ascending id, fetched ``batch_size`` at a time."""
        ...

    def optimize(self) -> None:
        """Build/refresh the ANN index and vacuum deletions where the backend has one."""
        ...

    def flush(self) -> None:
        """Make every write so far durable on disk."""
        ...

    def close(self) -> None:
        """Flush and release the store (idempotent)."""
        ...
