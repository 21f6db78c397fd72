"""Derive an embedder's clustering thresholds from labelled data.

Similarity scales differ wildly between models (two unrelated queries score ~0.8 with
multilingual-e5-small and ~0.1 with USE), so thresholds are measured per model:

* ``cluster_distance``: the dendrogram of average-linkage agglomerative clustering (cosine) is
  swept exactly, merge by merge; the threshold is the largest at which cluster purity still
  reaches ``target_purity``.
* ``merge_distance``: the data is split at random into two "batches", each clustered at
  ``cluster_distance``; every cluster of the second batch is matched to the nearest centroid
  (size-weighted mean) of the first. The threshold is the largest centroid distance up to which
  merging keeps the purity of the combined clustering at ``target_purity`` (median of a few
  random splits): two-level clustering must be as pure as clustering everything at once.
* the medians of cosine similarity over random pairs with different labels and over pairs
  with the same label (same function: the closest thing to paraphrases most logs offer).

Optional ``groups`` (one per text) calibrate for clustering *within* groups, as the learner
clusters within a scope (offered tools and/or the previous call): texts of different groups
never share a cluster and never merge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from odia_stream.embedding.profiles import ThresholdProfile
from odia_stream.embedding.protocol import Embedder

__all__ = [
    "LabelledEmbeddings",
    "LabelledTexts",
    "PurityPoint",
    "calibrate_from_embedding_sets",
    "calibrate_from_embeddings",
    "calibrate_on_corpora",
    "calibrate_thresholds",
    "purity_curve",
]


#: Smallest threshold ever returned: identical texts always cluster, nothing else is implied.
MIN_DISTANCE = 1e-4


@dataclass(frozen=True)
class PurityPoint:
    """State of the dendrogram after merging every pair closer than ``distance``."""

    distance: float
    clusters: int
    purity: float


def _linkage(embeddings: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import linkage

    return linkage(np.asarray(embeddings, dtype=np.float64), method="average", metric="cosine")


def _codes(values: Sequence[Hashable]) -> np.ndarray:
    index: dict[Hashable, int] = {}
    return np.asarray([index.setdefault(v, len(index)) for v in values], dtype=np.int64)


def _group_codes(groups: Sequence[Hashable] | None, n: int) -> np.ndarray:
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} groups for {n} texts")
    return _codes(groups)


def purity_curve(
    embeddings: np.ndarray, labels: Sequence[Hashable], groups: Sequence[Hashable] | None = None
) -> list[PurityPoint]:
    """Purity and cluster count after each merge of average-linkage cosine clustering.

    Entry ``k`` describes the clustering that ``AgglomerativeClustering(metric="cosine",
    linkage="average", distance_threshold=t)`` (run within each group, if ``groups`` are given)
    returns for ``t`` between entry ``k``'s and entry ``k+1``'s distance. Purity never
    increases along the curve.
    """
    n = len(labels)
    if n != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {n} labels")
    g = _group_codes(groups, n)
    curve = [PurityPoint(0.0, n, 1.0)]
    if n < 2:
        return curve
    x = np.asarray(embeddings)
    members: dict[int, np.ndarray] = {}
    events: list[tuple[float, int, int, int, int]] = []  # (height, group, left, right, new id)
    for code in np.unique(g):
        idx = np.flatnonzero(g == code)
        members[int(code)] = idx
        if len(idx) < 2:
            continue
        for k, (a, b, height, _) in enumerate(_linkage(x[idx])):
            events.append((float(height), int(code), int(a), int(b), len(idx) + k))
    events.sort(key=lambda e: e[0])  # stable: each group's own order is kept

    def key(code: int, local: int) -> tuple[int, int]:
        idx = members[code]
        return (-1, int(idx[local])) if local < len(idx) else (code, local)

    counts: dict[tuple[int, int], Counter[Hashable]] = {(-1, i): Counter([label]) for i, label in enumerate(labels)}
    best = {k: 1 for k in counts}
    majority_total = n
    clusters = n
    for height, code, a, b, new in events:
        ka, kb, knew = key(code, a), key(code, b), (code, new)
        left, right = counts.pop(ka), counts.pop(kb)
        if len(left) < len(right):
            left, right = right, left
        left.update(right)
        counts[knew] = left
        best[knew] = max(left.values())
        majority_total += best[knew] - best.pop(ka) - best.pop(kb)
        clusters -= 1
        curve.append(PurityPoint(height, clusters, majority_total / n))
    return curve


def _floor_sig(value: float, digits: int = 2) -> float:
    """``value`` rounded down to ``digits`` significant digits (a readable, never looser threshold)."""
    if value <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - int(np.floor(np.log10(value))))
    return float(np.floor(value * scale * (1 + 1e-12)) / scale)


def _threshold_between(low: float, high: float) -> float:
    """A readable threshold at most the midpoint of ``(low, high)``: 2 significant digits, rounded down.

    Purity only falls as the threshold grows, so rounding down keeps the target (it may give
    up a few of the last merges in exchange for not sitting on the edge of this sample).
    """
    mid = (low + high) / 2
    return _floor_sig(mid, 2) or mid


def _choose_cluster_distance(curve: list[PurityPoint], target_purity: float) -> float:
    ok = [i for i, point in enumerate(curve) if point.purity >= target_purity]
    last = ok[-1]  # curve[0] (all singletons) always qualifies
    if last == len(curve) - 1:
        return _threshold_between(curve[last].distance, curve[last].distance + 0.01)
    return _threshold_between(curve[last].distance, curve[last + 1].distance)


def _flat_clusters(embeddings: np.ndarray, threshold: float, groups: np.ndarray) -> np.ndarray:
    """Cluster ids (unique across groups) of average-linkage clustering within each group."""
    from scipy.cluster.hierarchy import fcluster

    out = np.zeros(len(embeddings), dtype=np.int64)
    offset = 0
    for code in np.unique(groups):
        idx = np.flatnonzero(groups == code)
        if len(idx) < 2:
            local = np.ones(len(idx), dtype=np.int64)
        else:
            # fcluster keeps merges with height <= t; sklearn keeps height < t; thresholds sit between heights.
            local = fcluster(_linkage(embeddings[idx]), threshold, criterion="distance").astype(np.int64)
        out[idx] = local + offset
        offset += int(local.max()) + 1
    return out


def _centroids(embeddings: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster ids, unit-norm centroids (mean of members, i.e. size-weighted) and sizes."""
    ids = np.unique(clusters)
    sums = np.zeros((len(ids), embeddings.shape[1]), dtype=np.float64)
    index = np.searchsorted(ids, clusters)
    np.add.at(sums, index, embeddings)
    sizes = np.bincount(index, minlength=len(ids))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return ids, sums / np.where(norms > 0, norms, 1.0), sizes


def _merge_distance_once(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    cluster_distance: float,
    target_purity: float,
    rng: np.random.Generator,
) -> float | None:
    """One two-batch simulation; ``None`` when the data is too small to split or nothing can merge."""
    order = rng.permutation(len(labels))
    half = len(order) // 2
    first, second = order[:half], order[half:]
    if half < 2 or len(second) < 2:
        return None
    c1 = _flat_clusters(embeddings[first], cluster_distance, groups[first])
    c2 = _flat_clusters(embeddings[second], cluster_distance, groups[second])
    ids1, cent1, _ = _centroids(embeddings[first], c1)
    ids2, cent2, _ = _centroids(embeddings[second], c2)
    index1 = np.searchsorted(ids1, c1)
    index2 = np.searchsorted(ids2, c2)
    group1 = np.zeros(len(ids1), dtype=np.int64)
    group1[index1] = groups[first]
    group2 = np.zeros(len(ids2), dtype=np.int64)
    group2[index2] = groups[second]
    existing: list[Counter[int]] = [Counter() for _ in ids1]
    for row, label in zip(index1, labels[first]):
        existing[row][label] += 1
    incoming: list[Counter[int]] = [Counter() for _ in ids2]
    for row, label in zip(index2, labels[second]):
        incoming[row][label] += 1
    sims = cent2 @ cent1.T
    sims[group2[:, None] != group1[None, :]] = -np.inf  # never merge across groups
    nearest = sims.argmax(axis=1)
    distance = 1.0 - sims[np.arange(len(ids2)), nearest]
    mergeable = np.isfinite(distance)
    if not mergeable.any():
        return None
    # Purity of the store after merging every incoming cluster closer than t, for growing t
    # (it never increases): the largest t that keeps it at target_purity is the threshold.
    n = len(labels)
    majority = sum(max(c.values()) for c in existing) + sum(max(c.values()) for c in incoming)
    order2 = np.argsort(distance, kind="stable")[: int(mergeable.sum())]
    last_ok: int | None = None
    for rank, j in enumerate(order2):
        target = existing[nearest[j]]
        before = max(target.values())
        target.update(incoming[j])
        majority += max(target.values()) - before - max(incoming[j].values())
        if majority / n >= target_purity:
            last_ok = rank
        else:
            break
    if last_ok is None:  # even the closest merge breaks the target: merge (near-)identical centroids only
        return max(float(distance[order2[0]]) / 2, MIN_DISTANCE)
    low = float(distance[order2[last_ok]])
    high = float(distance[order2[last_ok + 1]]) if last_ok + 1 < len(order2) else low + 0.01
    return _threshold_between(low, max(high, low + 1e-6))


def _pair_similarity_medians(
    embeddings: np.ndarray, labels: np.ndarray, rng: np.random.Generator, max_pairs: int = 20_000
) -> tuple[float, float]:
    n = len(labels)
    i = rng.integers(0, n, 4 * max_pairs)
    j = rng.integers(0, n, 4 * max_pairs)
    keep = labels[i] != labels[j]
    i, j = i[keep][:max_pairs], j[keep][:max_pairs]
    if len(i) == 0:
        raise ValueError("calibration needs texts with at least two different labels")
    random_sims = np.einsum("ij,ij->i", embeddings[i], embeddings[j])
    same: list[np.ndarray] = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if len(idx) > 1:
            sims = embeddings[idx] @ embeddings[idx].T
            same.append(sims[np.triu_indices(len(idx), 1)])
    if not same:
        raise ValueError("calibration needs at least two texts with the same label")
    same_sims = np.concatenate(same)
    if len(same_sims) > max_pairs:
        same_sims = rng.choice(same_sims, max_pairs, replace=False)
    return float(np.median(random_sims)), float(np.median(same_sims))


#: ``(texts, labels)`` or ``(texts, labels, groups)``: groups are clustering scopes, one per text.
LabelledTexts = tuple[Sequence[str], Sequence[Hashable]] | tuple[Sequence[str], Sequence[Hashable], Sequence[Hashable]]
#: The same with embeddings in place of texts.
LabelledEmbeddings = (
    tuple[np.ndarray, Sequence[Hashable]] | tuple[np.ndarray, Sequence[Hashable], Sequence[Hashable] | None]
)


def _prepare(
    embeddings: np.ndarray, labels: Sequence[Hashable], groups: Sequence[Hashable] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(embeddings, dtype=np.float32)
    y = _codes(labels)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} embeddings but {len(y)} labels")
    if len(y) < 4:
        raise ValueError("calibration needs at least 4 labelled texts")
    return x, y, _group_codes(groups, len(y))


def _check_target(target_purity: float) -> None:
    if not 0 < target_purity <= 1:
        raise ValueError("target_purity must be in (0, 1]")


def calibrate_from_embeddings(
    embeddings: np.ndarray,
    labels: Sequence[Hashable],
    *,
    groups: Sequence[Hashable] | None = None,
    target_purity: float = 0.95,
    cluster_distance: float | None = None,
    merge_trials: int = 3,
    seed: int = 0,
) -> ThresholdProfile:
    """:func:`calibrate_thresholds` on already-embedded unit-norm rows (one label per row).

    With ``cluster_distance`` given, only ``merge_distance`` and the medians are measured.
    """
    _check_target(target_purity)
    x, y, g = _prepare(embeddings, labels, groups)
    rng = np.random.default_rng(seed)
    random_p50, same_p50 = _pair_similarity_medians(x, y, rng)
    if cluster_distance is None:
        cluster_distance = _choose_cluster_distance(purity_curve(x, list(y), list(g)), target_purity)
    cluster_distance = max(cluster_distance, MIN_DISTANCE)
    trials = [_merge_distance_once(x, y, g, cluster_distance, target_purity, rng) for _ in range(merge_trials)]
    found = [t for t in trials if t is not None]
    merge_distance = float(np.median(found)) if found else cluster_distance
    return ThresholdProfile(
        cluster_distance=cluster_distance,
        merge_distance=max(_floor_sig(merge_distance, 2), MIN_DISTANCE),
        random_pair_similarity_p50=round(random_p50, 4),
        paraphrase_similarity_p50=round(same_p50, 4),
    )


def calibrate_from_embedding_sets(
    sets: Sequence[LabelledEmbeddings],
    *,
    target_purity: float = 0.95,
    seed: int = 0,
) -> ThresholdProfile:
    """One profile valid on every labelled set (e.g. one per language or product).

    Each set is ``(embeddings, labels)`` or ``(embeddings, labels, groups)``.
    ``cluster_distance`` is the smallest of the per-set thresholds (purity reaches the target
    on every set); ``merge_distance`` is then measured on each set at that first-level
    threshold and the smallest kept; the similarity medians are averaged over the sets.
    """
    _check_target(target_purity)
    if not sets:
        raise ValueError("no labelled sets to calibrate on")
    prepared = [_prepare(*labelled) for labelled in sets]
    cluster_distance = min(
        _choose_cluster_distance(purity_curve(x, list(y), list(g)), target_purity) for x, y, g in prepared
    )
    profiles = [
        calibrate_from_embeddings(
            x, y, groups=list(g), target_purity=target_purity, cluster_distance=cluster_distance, seed=seed
        )
        for x, y, g in prepared
    ]
    return ThresholdProfile(
        cluster_distance=max(cluster_distance, MIN_DISTANCE),
        merge_distance=min(p.merge_distance for p in profiles),
        random_pair_similarity_p50=round(float(np.mean([p.random_pair_similarity_p50 for p in profiles])), 4),
        paraphrase_similarity_p50=round(float(np.mean([p.paraphrase_similarity_p50 for p in profiles])), 4),
    )


def _unique_majority(
    texts: Sequence[str],
    labels: Sequence[Hashable],
    groups: Sequence[Hashable] | None,
    max_texts: int,
    seed: int,
) -> tuple[list[str], list[Hashable], list[Hashable] | None]:
    """Distinct (group, text) pairs (at most ``max_texts``, sampled) with their most frequent label."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if groups is not None and len(groups) != len(texts):
        raise ValueError(f"{len(groups)} groups for {len(texts)} texts")
    scopes: Sequence[Hashable] = groups if groups is not None else [""] * len(texts)
    by_key: dict[tuple[str, str], tuple[Hashable, Counter[Hashable]]] = {}
    for text, label, scope in zip(texts, labels, scopes):
        by_key.setdefault((str(scope), text), (scope, Counter()))[1][label] += 1
    keys = sorted(by_key)
    if len(keys) > max_texts:
        rng = np.random.default_rng(seed)
        keys = [keys[i] for i in sorted(rng.choice(len(keys), max_texts, replace=False))]
    unique = [text for _, text in keys]
    majority = [by_key[k][1].most_common(1)[0][0] for k in keys]
    return unique, majority, ([by_key[k][0] for k in keys] if groups is not None else None)


def calibrate_thresholds(
    embedder: Embedder,
    texts: Sequence[str],
    labels: Sequence[Hashable],
    *,
    groups: Sequence[Hashable] | None = None,
    target_purity: float = 0.95,
    max_texts: int = 4000,
    seed: int = 0,
) -> ThresholdProfile:
    """Measure a :class:`ThresholdProfile` for ``embedder`` from texts labelled by function name.

    ``groups`` (optional, one per text) are the clustering scopes the thresholds will be used
    in (e.g. the learner's scope key): clusters never span groups. Identical texts of a group
    are merged (majority label); at most ``max_texts`` are sampled. Use a few thousand real
    queries over many functions; calibrate again whenever the model changes.
    """
    unique, majority, scopes = _unique_majority(texts, labels, groups, max_texts, seed)
    return calibrate_from_embeddings(
        embedder.embed(unique), majority, groups=scopes, target_purity=target_purity, seed=seed
    )


def calibrate_on_corpora(
    embedder: Embedder,
    corpora: Mapping[str, LabelledTexts],
    *,
    target_purity: float = 0.95,
    max_texts: int = 4000,
    seed: int = 0,
) -> ThresholdProfile:
    """Like :func:`calibrate_thresholds`, valid on each of several corpora.

    ``corpora`` maps a name to ``(texts, labels)`` or ``(texts, labels, groups)``.
    """
    sets: list[LabelledEmbeddings] = []
    for corpus in corpora.values():
        texts, labels = corpus[0], corpus[1]
        groups = corpus[2] if len(corpus) > 2 else None  # type: ignore[misc]
        unique, majority, scopes = _unique_majority(texts, labels, groups, max_texts, seed)
        sets.append((embedder.embed(unique), majority, scopes))
    return calibrate_from_embedding_sets(sets, target_purity=target_purity, seed=seed)
