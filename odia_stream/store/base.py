"""The cluster-store contract, :class:`ClusterIndex`: its public methods, argument checks and the
open/closed life cycle, shared by every backend.

Each public method refuses a closed store, validates and normalises its arguments, then calls the
backend's protected storage method (``_upsert``, ``_search``, ...) with clean values only. A backend
fills in those methods and nothing else of the contract.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import numpy as np

from odia_stream.store._common import (
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
    vector_of,
)
from odia_stream.store.types import ClusterHit, ClusterPoint, ClusterStoreError

#: Exact-match conditions on payload keys, all of which must hold (``("scope", "app")`` first if any).
Matches = list[tuple[str, str]]
#: A checked point: id, float32 vector of the store's dim, JSON payload with a str ``scope``.
CheckedPoint = tuple[int, np.ndarray, dict[str, Any]]


class ClusterIndex(ABC):
    """Vector index of cluster representatives (one point per cluster, cosine similarity), searched
    inside the store and filtered by ``scope``; a backend subclass provides the storage calls.

    Records the backends return (``_retrieve``, ``_scroll``) need ``id``, ``vector`` and
    ``payload`` attributes; scored points (``_search``) need ``id``, ``score`` and ``payload``.
    """

    embedder_id: str
    dim: int
    _closed: bool = False

    def __init__(self, embedder_id: str, dim: int) -> None:
        """Check and keep the embedder the store holds vectors of."""
        self.embedder_id = check_embedder_id(embedder_id)
        self.dim = check_dim(dim)

    # -- storage calls a backend provides (arguments already checked, store open) --------------

    @abstractmethod
    def _upsert(self, points: Sequence[CheckedPoint]) -> None:
        """Write (insert or replace) at least one point."""

    @abstractmethod
    def _set_payload(self, cluster_id: int, payload: dict[str, Any]) -> None:
        """Merge a non-empty payload into an existing cluster's payload."""

    @abstractmethod
    def _delete(self, cluster_ids: list[int]) -> None:
        """Delete at least one id (missing ones are ignored)."""

    @abstractmethod
    def _search(self, vector: np.ndarray, matches: Matches, limit: int) -> Sequence[Any]:
        """The ``limit`` nearest scored points satisfying ``matches``, best first."""

    @abstractmethod
    def _search_batch(
        self, vectors: np.ndarray, matches: Sequence[Matches], limit: int
    ) -> list[Sequence[Any]]:
        """``_search`` for each of at least one row of ``vectors`` with its matches."""

    @abstractmethod
    def _retrieve(self, cluster_ids: list[int], *, with_data: bool) -> Sequence[Any]:
        """Records of the ids that exist, in any order (vector and payload only ``with_data``)."""

    @abstractmethod
    def _count(self) -> int:
        """Exact number of points."""

    @abstractmethod
    def _scroll(self, offset: Any, limit: int) -> tuple[Sequence[Any], Any]:
        """One page of records by ascending id from ``offset`` (``None``: the first), and the next offset."""

    @abstractmethod
    def _optimize(self) -> None:
        """Index/vacuum where the backend can (may be nothing)."""

    @abstractmethod
    def _flush(self) -> None:
        """Make every write so far durable (may be nothing)."""

    @abstractmethod
    def _release(self) -> None:
        """Release the engine or connection (called once, also when opening failed)."""

    @abstractmethod
    def _repr_args(self) -> list[str]:
        """What ``repr`` shows before the open/closed state."""

    # -- life cycle -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClusterStoreError(f"{type(self).__name__} is closed")

    def _set_up(self, step: Callable[[], None]) -> None:
        """Run the opening ``step()``; if it fails, release the backend and mark the store closed."""
        try:
            step()
        except BaseException:
            self._closed = True
            self._release()
            raise

    def close(self) -> None:
        """Flush and release the store (idempotent)."""
        if self._closed:
            return
        try:
            self._flush()
        finally:
            self._closed = True
            self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}({', '.join(self._repr_args())}, {state})"

    # -- writes -----------------------------------------------------------------------------

    def upsert(self, points: Sequence[ClusterPoint]) -> None:
        """Insert or replace clusters (vector and whole payload); all validated first."""
        self._check_open()
        checked = [check_point(p, self.dim) for p in points]
        if checked:
            self._upsert(checked)

    def set_payload(self, cluster_id: int, payload: Mapping[str, Any]) -> None:
        """Merge ``payload`` into the cluster's payload; ``KeyError`` if it does not exist."""
        self._check_open()
        cid = check_cluster_id(cluster_id)
        update = check_payload_update(payload)
        if not self._retrieve([cid], with_data=False):
            raise KeyError(f"no cluster {cid} in the store")
        if update:
            self._set_payload(cid, update)

    def delete(self, cluster_ids: Sequence[int]) -> None:
        """Delete clusters; missing ids are ignored."""
        self._check_open()
        ids = check_ids(cluster_ids)
        if ids:
            self._delete(ids)

    # -- reads ------------------------------------------------------------------------------

    @staticmethod
    def _matches(scope: str | None, where: Mapping[str, str]) -> Matches:
        head = [] if scope is None else [("scope", check_scope(scope))]
        return head + list(where.items())

    @staticmethod
    def _hits(points: Sequence[Any], min_score: float | None) -> list[ClusterHit]:
        hits = [ClusterHit(point_id(p.id), float(p.score), dict(p.payload or {})) for p in points]
        return keep_above(hits, min_score)

    @staticmethod
    def _point(record: Any) -> ClusterPoint:
        return ClusterPoint(point_id(record.id), vector_of(record.vector), dict(record.payload or {}))

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
        matches = self._matches(scope, check_where(where))
        lim, threshold = check_limit(limit), check_min_score(min_score)
        return self._hits(self._search(vec, matches, lim), threshold)

    def search_batch(
        self,
        vectors: np.ndarray,
        *,
        scopes: Sequence[str | None],
        limit: int = 5,
        min_score: float | None = None,
    ) -> list[list[ClusterHit]]:
        """One ``search`` per row of ``vectors`` with its scope, in one backend call."""
        self._check_open()
        mat = check_matrix(vectors, self.dim)
        scopes = list(scopes)
        if len(scopes) != mat.shape[0]:
            raise ValueError(f"got {mat.shape[0]} vectors but {len(scopes)} scopes")
        lim, threshold = check_limit(limit), check_min_score(min_score)
        if not scopes:
            return []
        matches = [self._matches(scope, {}) for scope in scopes]
        return [self._hits(r, threshold) for r in self._search_batch(mat, matches, lim)]

    def get(self, cluster_ids: Sequence[int]) -> list[ClusterPoint]:
        """Clusters by id in the order asked (duplicates once); missing ids are skipped."""
        self._check_open()
        ids = list(dict.fromkeys(check_ids(cluster_ids)))
        if not ids:
            return []
        found = {p.cluster_id: p for p in map(self._point, self._retrieve(ids, with_data=True))}
        return [found[cid] for cid in ids if cid in found]

    def count(self) -> int:
        """Number of clusters stored."""
        self._check_open()
        return self._count()

    def iter_points(self, batch_size: int = 1000) -> Iterator[ClusterPoint]:
        """Every cluster by ascending id, ``batch_size`` per scroll page."""
        self._check_open()
        size = check_limit(batch_size)
        offset: Any = None
        while True:
            records, offset = self._scroll(offset, size)
            yield from map(self._point, records)
            if offset is None:
                return

    # -- maintenance ------------------------------------------------------------------------

    def optimize(self) -> None:
        """Build/refresh the ANN index and vacuum deletions where the backend has one."""
        self._check_open()
        self._optimize()

    def flush(self) -> None:
        """Make every write so far durable on disk."""
        self._check_open()
        self._flush()
