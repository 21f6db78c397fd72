"""Input validation and helpers shared by the cluster-store backends."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from odia_stream.store.types import ClusterHit, ClusterPoint, ClusterStoreError

#: Qdrant point ids are unsigned 64-bit; stay in the range every client handles.
MAX_CLUSTER_ID = 2**63 - 1


def check_dim(dim: int) -> int:
    """A positive vector dimension."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or int(dim) <= 0:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    return int(dim)


def check_embedder_id(embedder_id: str) -> str:
    """A non-empty embedder id."""
    if not isinstance(embedder_id, str) or not embedder_id.strip():
        raise ValueError(f"embedder_id must be a non-empty string, got {embedder_id!r}")
    return embedder_id


def check_cluster_id(cluster_id: Any) -> int:
    """A cluster id as a plain non-negative int."""
    if isinstance(cluster_id, bool) or not isinstance(cluster_id, (int, np.integer)):
        raise ValueError(f"cluster_id must be an int, got {type(cluster_id).__name__} {cluster_id!r}")
    value = int(cluster_id)
    if not 0 <= value <= MAX_CLUSTER_ID:
        raise ValueError(f"cluster_id must be in [0, 2**63-1], got {value}")
    return value


def _float32(values: Any, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a numeric array: {exc}") from exc


def check_vector(vector: Any, dim: int, what: str = "vector") -> np.ndarray:
    """A finite, non-zero float32 vector of shape ``(dim,)``."""
    arr = _float32(vector, what)
    if arr.ndim != 1 or arr.shape[0] != dim:
        raise ValueError(f"{what} must have shape ({dim},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} has non-finite values (NaN or inf)")
    if not np.any(arr):
        raise ValueError(f"{what} is all zeros: cosine similarity is undefined for it")
    return arr


def check_matrix(vectors: Any, dim: int) -> np.ndarray:
    """A finite float32 matrix of shape ``(n, dim)`` with no all-zero row."""
    arr = _float32(vectors, "vectors")
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"vectors must have shape (n, {dim}), got {arr.shape}")
    bad = ~np.all(np.isfinite(arr), axis=1)
    if bad.any():
        raise ValueError(f"vectors row {int(np.argmax(bad))} has non-finite values (NaN or inf)")
    zero = ~np.any(arr, axis=1)
    if zero.any():
        raise ValueError(f"vectors row {int(np.argmax(zero))} is all zeros: cosine similarity is undefined")
    return arr


def check_limit(limit: int) -> int:
    """A positive result limit."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or int(limit) <= 0:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    return int(limit)


def check_min_score(min_score: float | None) -> float | None:
    """``None`` or a finite float."""
    if min_score is None:
        return None
    value = float(min_score)
    if not math.isfinite(value):
        raise ValueError(f"min_score must be finite, got {min_score!r}")
    return value


def check_scope(scope: Any, what: str = "scope") -> str:
    """A scope string."""
    if not isinstance(scope, str):
        raise ValueError(f"{what} must be a str, got {type(scope).__name__} {scope!r}")
    return scope


def check_where(where: Mapping[str, str] | None) -> dict[str, str]:
    """Exact-match keyword filters ``{key: value}``."""
    if not where:
        return {}
    out: dict[str, str] = {}
    for key, value in where.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"where keys must be non-empty strings, got {key!r}")
        out[key] = check_scope(value, what=f"where[{key!r}]")
    return out


def jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into plain JSON values (recursively)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"payload keys must be strings, got {key!r}")
            out[key] = jsonable(item)
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [jsonable(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"payload values must be finite numbers, got {value!r}")
        return value
    raise ValueError(f"payload value of type {type(value).__name__} is not JSON-serialisable: {value!r}")


def check_point(point: ClusterPoint, dim: int) -> tuple[int, np.ndarray, dict[str, Any]]:
    """Validate a point: id, vector and a JSON payload holding a str ``scope``."""
    if not isinstance(point, ClusterPoint):
        raise ValueError(f"expected a ClusterPoint, got {type(point).__name__}")
    cid = check_cluster_id(point.cluster_id)
    vec = check_vector(point.vector, dim, what=f"vector of cluster {cid}")
    payload = jsonable(point.payload or {})
    if "scope" not in payload:
        raise ValueError(f"payload of cluster {cid} has no 'scope'")
    check_scope(payload["scope"], what=f"payload['scope'] of cluster {cid}")
    return cid, vec, payload


def check_payload_update(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A payload merge: JSON values, and ``scope`` (if present) a str."""
    out = jsonable(payload)
    if not isinstance(out, dict):
        raise ValueError("payload must be a mapping")
    if "scope" in out:
        check_scope(out["scope"], what="payload['scope']")
    return out


def check_ids(cluster_ids: Sequence[int]) -> list[int]:
    """A list of valid cluster ids."""
    if isinstance(cluster_ids, (int, np.integer)):
        raise ValueError("cluster_ids must be a sequence of ints, not a single int")
    return [check_cluster_id(c) for c in cluster_ids]


def keep_above(hits: list[ClusterHit], min_score: float | None) -> list[ClusterHit]:
    """Hits with ``score >= min_score`` (the same boundary on every backend)."""
    if min_score is None:
        return hits
    return [h for h in hits if h.score >= min_score]


def vector_of(raw: Any) -> np.ndarray:
    """A stored record's vector as float32: a list of floats, or ``{name: list}`` (the unnamed one)."""
    if isinstance(raw, dict):
        raw = raw.get("", next(iter(raw.values())))
    return np.asarray(raw, dtype=np.float32)


def point_id(raw: Any) -> int:
    """A backend point id as int (cluster ids are always ints)."""
    if isinstance(raw, (int, np.integer)):
        return int(raw)
    raise ClusterStoreError(f"unexpected non-integer point id {raw!r} in the cluster store")
