"""How well predicted clusters match known labels (function names): one definition for all.

Tests, benchmarks, threshold calibration and reports use these functions, so a "purity" in
one place means the same thing everywhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

__all__ = ["adjusted_rand", "cluster_purity", "majority_labels"]


def _check(true_labels: Sequence[Hashable], pred_clusters: Sequence[Hashable]) -> None:
    if len(true_labels) != len(pred_clusters):
        raise ValueError(f"{len(true_labels)} labels but {len(pred_clusters)} cluster assignments")


def majority_labels(
    true_labels: Sequence[Hashable], pred_clusters: Sequence[Hashable]
) -> dict[Hashable, tuple[Hashable, int, int]]:
    """Per cluster: ``(majority label, its count, cluster size)``; ties go to the label seen first."""
    _check(true_labels, pred_clusters)
    counts: dict[Hashable, Counter[Hashable]] = defaultdict(Counter)
    for label, cluster in zip(true_labels, pred_clusters):
        counts[cluster][label] += 1
    out: dict[Hashable, tuple[Hashable, int, int]] = {}
    for cluster, counter in counts.items():
        label, n = counter.most_common(1)[0]
        out[cluster] = (label, n, sum(counter.values()))
    return out


def cluster_purity(true_labels: Sequence[Hashable], pred_clusters: Sequence[Hashable]) -> float:
    """Share of points whose cluster's majority true label equals their own label.

    1.0 for singletons or perfect clusters; ``1 / n_labels`` or less when everything is one
    cluster. An empty input has purity 1.0.
    """
    _check(true_labels, pred_clusters)
    if not true_labels:
        return 1.0
    majority = sum(n for _, n, _ in majority_labels(true_labels, pred_clusters).values())
    return majority / len(true_labels)


def adjusted_rand(true_labels: Sequence[Hashable], pred_clusters: Sequence[Hashable]) -> float:
    """Adjusted Rand index (scikit-learn's), chance-corrected agreement of the two partitions."""
    _check(true_labels, pred_clusters)
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(_codes(true_labels), _codes(pred_clusters)))


def _codes(values: Sequence[Hashable]) -> list[int]:
    index: dict[Hashable, int] = {}
    return [index.setdefault(v, len(index)) for v in values]
