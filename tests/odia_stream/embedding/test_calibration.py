"""Threshold calibration on real embeddings of a small labelled set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering

from odia_stream.cluster_quality import cluster_purity
from odia_stream.embedding import (
    Embedder,
    ThresholdProfile,
    calibrate_from_embedding_sets,
    calibrate_from_embeddings,
    calibrate_on_corpora,
    calibrate_thresholds,
    purity_curve,
)


@pytest.mark.parametrize("name", ["use", pytest.param("e5", marks=pytest.mark.slow)])
def test_calibration_orders_paraphrase_above_random(
    name: str, request: pytest.FixtureRequest, labelled: tuple[list[str], list[str]]
) -> None:
    emb: Embedder = request.getfixturevalue(name)
    texts, labels = labelled
    profile = calibrate_thresholds(emb, texts, labels)
    assert isinstance(profile, ThresholdProfile)
    assert profile.paraphrase_similarity_p50 > profile.random_pair_similarity_p50
    assert 0 < profile.merge_distance < 1 and 0 < profile.cluster_distance < 1
    # the chosen threshold reaches the target purity with sklearn's clustering, and merges something
    clusters = AgglomerativeClustering(
        metric="cosine", linkage="average", distance_threshold=profile.cluster_distance, n_clusters=None
    ).fit_predict(emb.embed(texts))
    assert cluster_purity(labels, clusters.tolist()) >= 0.95
    assert len(set(clusters.tolist())) < len(texts)


def test_scales_differ_between_models(
    e5: Embedder, use: Embedder, labelled: tuple[list[str], list[str]]
) -> None:
    texts, labels = labelled
    p_e5 = calibrate_thresholds(e5, texts, labels)
    p_use = calibrate_thresholds(use, texts, labels)
    # e5 packs everything into a narrow cone; USE does not: one threshold cannot serve both
    assert p_e5.random_pair_similarity_p50 > p_use.random_pair_similarity_p50 + 0.3
    assert p_e5.cluster_distance < p_use.cluster_distance


def test_purity_curve_matches_sklearn(use: Embedder, labelled: tuple[list[str], list[str]]) -> None:
    texts, labels = labelled
    x = use.embed(texts)
    curve = purity_curve(x, labels)
    assert curve[0].clusters == len(texts) and curve[0].purity == 1.0 and curve[-1].clusters == 1
    assert all(b.purity <= a.purity + 1e-12 for a, b in zip(curve, curve[1:]))
    for point, nxt in zip(curve[5:25:4], curve[6:26:4]):
        if nxt.distance - point.distance < 1e-6:
            continue
        t = (point.distance + nxt.distance) / 2
        pred = AgglomerativeClustering(
            metric="cosine", linkage="average", distance_threshold=t, n_clusters=None
        ).fit_predict(x)
        assert len(set(pred.tolist())) == point.clusters
        assert cluster_purity(labels, pred.tolist()) == pytest.approx(point.purity)


def test_multi_corpus_profile_is_valid_on_each(use: Embedder, labelled: tuple[list[str], list[str]]) -> None:
    texts, labels = labelled
    zh = [(t, l) for t, l in zip(texts, labels) if not t.isascii()]
    en = [(t, l) for t, l in zip(texts, labels) if t.isascii()]
    corpora = {"zh": ([t for t, _ in zh], [l for _, l in zh]), "en": ([t for t, _ in en], [l for _, l in en])}
    joint = calibrate_on_corpora(use, corpora)
    each = [calibrate_thresholds(use, *c) for c in corpora.values()]
    assert joint.cluster_distance == min(p.cluster_distance for p in each)
    assert joint.merge_distance > 0
    # the same, from embeddings (texts are calibrated in sorted order)
    sets = []
    for t, l in corpora.values():
        pairs = sorted(zip(t, l))
        sets.append((use.embed([p[0] for p in pairs]), [p[1] for p in pairs]))
    assert calibrate_from_embedding_sets(sets) == joint


def test_calibration_rejects_unusable_input(use: Embedder) -> None:
    with pytest.raises(ValueError):
        calibrate_thresholds(use, ["a", "b"], ["x"])
    with pytest.raises(ValueError, match="two different labels"):
        calibrate_thresholds(use, ["a b", "c d", "e f", "g h"], ["x"] * 4)
    with pytest.raises(ValueError, match="same label"):
        calibrate_thresholds(use, ["a b", "c d", "e f", "g h"], ["w", "x", "y", "z"])
    with pytest.raises(ValueError):
        ThresholdProfile(cluster_distance=0.0, merge_distance=0.1, random_pair_similarity_p50=0, paraphrase_similarity_p50=0)
    assert np.isfinite(calibrate_thresholds(use, ["a b", "a b c", "e f", "e f g"], ["x", "x", "y", "y"]).cluster_distance)


def test_groups_keep_context_dependent_follow_ups_apart(use: Embedder) -> None:
    # The same answer ("北京") follows different questions: only the context tells the function.
    cities = ["北京", "上海", "广州", "深圳", "杭州", "成都"]
    texts = cities * 2
    labels = ["weather.query"] * 6 + ["train.book"] * 6
    groups = ["ctx:weather.query:ask"] * 6 + ["ctx:train.book:ask"] * 6
    x = use.embed(texts)
    blind = calibrate_from_embeddings(x, labels)
    scoped = calibrate_from_embeddings(x, labels, groups=groups)
    assert scoped.cluster_distance > blind.cluster_distance
    curve = purity_curve(x, labels, groups)
    assert all(p.purity == 1.0 for p in curve) and curve[-1].clusters == 2  # never across groups
    # calibrate_thresholds keeps a text that occurs in two groups as two points
    assert calibrate_thresholds(use, texts, labels, groups=groups).cluster_distance == scoped.cluster_distance
