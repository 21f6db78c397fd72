"""cluster_purity / adjusted_rand on hand-checked cases."""

from __future__ import annotations

import pytest

from odia_stream.cluster_quality import adjusted_rand, cluster_purity, majority_labels


def test_perfect_and_singleton_clusterings_are_pure() -> None:
    labels = ["a", "a", "b", "b", "c"]
    assert cluster_purity(labels, [0, 0, 1, 1, 2]) == 1.0
    assert cluster_purity(labels, [0, 1, 2, 3, 4]) == 1.0
    assert cluster_purity([], []) == 1.0


def test_one_big_cluster_scores_the_majority_share() -> None:
    assert cluster_purity(["a", "a", "a", "b", "c"], [7] * 5) == pytest.approx(3 / 5)


def test_mixed_clusters_count_points_matching_their_cluster_majority() -> None:
    labels = ["f", "f", "g", "g", "g", "h"]
    clusters = [1, 1, 1, 2, 2, 2]  # cluster 1: f,f,g (2 right); cluster 2: g,g,h (2 right)
    assert cluster_purity(labels, clusters) == pytest.approx(4 / 6)
    assert majority_labels(labels, clusters) == {1: ("f", 2, 3), 2: ("g", 2, 3)}


def test_cluster_ids_and_labels_of_any_hashable_type() -> None:
    assert cluster_purity([1, 1, "1"], ["x", "x", "x"]) == pytest.approx(2 / 3)
    assert cluster_purity([("a", 1), ("a", 1)], [None, None]) == 1.0


def test_adjusted_rand_passthrough() -> None:
    assert adjusted_rand(["a", "a", "b", "b"], [5, 5, 9, 9]) == pytest.approx(1.0)
    assert adjusted_rand(["a", "a", "b", "b"], [0, 1, 0, 1]) < 0.0
    # 1 and "1" are different labels, not merged by a string conversion
    assert adjusted_rand([1, 1, "1", "1"], [0, 0, 1, 1]) == pytest.approx(1.0)


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        cluster_purity(["a"], [0, 1])
    with pytest.raises(ValueError):
        adjusted_rand(["a"], [0, 1])
