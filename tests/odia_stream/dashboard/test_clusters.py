"""The cluster-state topic folded like a compacted topic: last value per key, merged hidden."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from odia_stream.dashboard import LatestClusterStates
from schemas import ClusterState

MakeState = Callable[..., ClusterState]


def test_last_value_per_key_wins_even_with_a_lower_version(make_state: MakeState) -> None:
    t = LatestClusterStates()
    t.apply("c1", make_state("c1", size=5, version=3))
    t.apply("c1", make_state("c1", size=9, version=4))
    t.apply("c2", make_state("c2", size=7))
    # A rebuilt learner counts versions from 1 again: the newer record still wins.
    t.apply("c1", make_state("c1", size=2, version=1, label="undecided"))
    assert [(r.cluster_id, r.size, r.version, r.label) for r in t.rows(10)] == [
        ("c2", 7, 1, "simple"),
        ("c1", 2, 1, "undecided"),
    ]


def test_tombstone_deletes_the_key(make_state: MakeState) -> None:
    t = LatestClusterStates()
    t.apply("c1", make_state("c1"))
    t.apply("c1", None)
    t.apply("c-unknown", None)  # deleting what was never there is a no-op
    assert t.rows(10) == [] and len(t) == 0


def test_merged_clusters_are_hidden_and_left_out_of_totals(make_state: MakeState) -> None:
    t = LatestClusterStates()
    t.apply("a", make_state("a", size=50, label="simple"))
    t.apply("b", make_state("b", size=30, label="complex", dominant=None))
    t.apply("c", make_state("c", size=20, label="simple"))
    t.apply("c", make_state("c", size=20, label="simple", version=2, merged_into="a"))
    assert [r.cluster_id for r in t.rows(10)] == ["a", "b"]
    assert t.merged == 1 and len(t) == 3
    assert t.get("c") is not None and t.get("c").merged_into == "a"  # type: ignore[union-attr]
    totals = {x.label: (x.clusters, x.records) for x in t.totals()}
    assert totals == {"simple": (1, 50), "complex": (1, 30), "undecided": (0, 0)}


def test_rows_are_largest_first_and_limited(make_state: MakeState) -> None:
    t = LatestClusterStates()
    for i, size in enumerate([3, 40, 12, 40, 1]):
        t.apply(f"c{i}", make_state(f"c{i}", size=size))
    assert [(r.cluster_id, r.size) for r in t.rows(3)] == [("c1", 40), ("c3", 40), ("c2", 12)]
    assert t.rows(0) == []
    with pytest.raises(ValueError, match="limit"):
        t.rows(-1)
    row = t.rows(1)[0]
    assert row.dominant_function == "play_music" and row.sample_queries == ["play jazz"]
    assert row.templates == ["play <genre>"]


def test_a_key_that_is_not_the_cluster_id_is_refused(make_state: MakeState) -> None:
    t = LatestClusterStates()
    with pytest.raises(ValueError, match="differs from its cluster_id"):
        t.apply("c1", make_state("c2"))
    assert len(t) == 0
