"""Second-level merge: new first-level clusters join the nearest existing cluster of their scope
when its representative (count-weighted average of member embeddings) is close enough."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from odia_stream.store import ClusterIndex


def normalised(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length (zero vectors stay zero)."""
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def weighted_representative(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Unit-length count-weighted average of ``vectors``."""
    w = np.asarray(weights, dtype=np.float32)[:, None]
    return normalised((vectors * w).sum(axis=0))


class WeightedCentroidMerger:
    """Find, through the vector store, the existing cluster each new cluster merges into."""

    def __init__(self, index: ClusterIndex, merge_distance: float) -> None:
        self.index = index
        self.merge_distance = merge_distance

    def targets(self, representatives: np.ndarray, scopes: Sequence[str]) -> list[tuple[int, float] | None]:
        """For each representative: ``(cluster_id, similarity)`` of the nearest existing cluster
        of the same scope within the merge distance, else ``None``."""
        if len(representatives) == 0:
            return []
        hits = self.index.search_batch(
            representatives, scopes=list(scopes), limit=1, min_score=1.0 - self.merge_distance
        )
        return [(h[0].cluster_id, h[0].score) if h else None for h in hits]
