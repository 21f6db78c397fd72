"""Stage-1 nearest-cluster lookup behind a small interface.

:class:`MatrixClusterLookup` keeps one numpy matrix of cluster representatives per scope (what
the router snapshot carries; at thousands of clusters a matrix product is microseconds).
:class:`IndexClusterLookup` asks a :class:`~odia_stream.store.ClusterIndex` instead (the embedded
Qdrant engine, or a Qdrant server in production) and maps its hits to snapshot rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from odia_stream.store import ClusterIndex, ClusterPoint


@dataclass(frozen=True, slots=True)
class ClusterMatch:
    """The nearest cluster: its row in the snapshot's cluster table and its cosine similarity."""

    row: int
    score: float


@runtime_checkable
class ClusterLookup(Protocol):
    """Nearest cluster of a scope to a unit query vector."""

    def nearest(self, vector: np.ndarray, scope: str) -> ClusterMatch | None:
        """The most similar cluster of ``scope``, or ``None`` when the scope has none."""
        ...


class MatrixClusterLookup:
    """Exact search over per-scope matrices of unit representatives (rows of ``vectors``)."""

    def __init__(self, vectors: np.ndarray, scopes: Sequence[str]) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(scopes):
            raise ValueError(f"need one scope per vector row, got {vectors.shape} and {len(scopes)} scopes")
        rows: dict[str, list[int]] = {}
        for i, scope in enumerate(scopes):
            rows.setdefault(scope, []).append(i)
        self.dim = vectors.shape[1]
        self._by_scope: dict[str, tuple[np.ndarray, np.ndarray]] = {
            scope: (np.asarray(idx, dtype=np.int64), np.ascontiguousarray(vectors[idx])) for scope, idx in rows.items()
        }

    def nearest(self, vector: np.ndarray, scope: str) -> ClusterMatch | None:
        """The most similar cluster of ``scope`` (exact, one matrix-vector product)."""
        found = self._by_scope.get(scope)
        if found is None:
            return None
        rows, matrix = found
        sims = matrix @ vector
        j = int(np.argmax(sims))
        return ClusterMatch(int(rows[j]), float(sims[j]))

    def scopes(self) -> list[str]:
        """Scopes that hold clusters."""
        return list(self._by_scope)


class IndexClusterLookup:
    """Nearest cluster through a :class:`ClusterIndex` (scope-filtered search inside the store).

    ``row_of`` maps store cluster ids to snapshot rows; hits the snapshot does not know (clusters
    created after it) are skipped, so ``candidates`` hits are fetched.
    """

    def __init__(self, index: ClusterIndex, row_of: Mapping[int, int], candidates: int = 3) -> None:
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        self.index = index
        self.row_of = dict(row_of)
        self.candidates = candidates

    def nearest(self, vector: np.ndarray, scope: str) -> ClusterMatch | None:
        """The most similar known cluster of ``scope`` according to the store."""
        for hit in self.index.search(vector, scope=scope, limit=self.candidates):
            row = self.row_of.get(hit.cluster_id)
            if row is not None:
                return ClusterMatch(row, float(hit.score))
        return None

    def close(self) -> None:
        """Close the store."""
        self.index.close()


def fill_index(
    index: ClusterIndex, cluster_ids: Sequence[int], vectors: np.ndarray, scopes: Sequence[str], labels: Sequence[str]
) -> None:
    """Upsert snapshot clusters into ``index`` (e.g. a collection named after the router version)."""
    points = [
        ClusterPoint(int(cid), np.asarray(vectors[i], dtype=np.float32), {"scope": scopes[i], "label": labels[i]})
        for i, cid in enumerate(cluster_ids)
    ]
    for start in range(0, len(points), 1000):
        index.upsert(points[start : start + 1000])
    index.flush()
