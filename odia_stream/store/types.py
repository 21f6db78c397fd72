"""The cluster-store records (points, hits) and errors; the contract itself is ``ClusterIndex`` (base.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
