"""First-level clustering of one micro-batch: average-linkage agglomerative clustering with a
cosine distance threshold and no preset number of clusters."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering


def agglomerate(vectors: np.ndarray, distance_threshold: float) -> np.ndarray:
    """Cluster labels (0..k-1, numbered by first appearance) for L2-normalised ``vectors``.

    >>> v = np.array([[1, 0], [0.99, 0.141], [0, 1]], dtype=np.float32)
    >>> agglomerate(v, 0.1).tolist()
    [0, 0, 1]
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    raw = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance_threshold
    ).fit_predict(vectors)
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(c), len(remap)) for c in raw], dtype=np.int64)
