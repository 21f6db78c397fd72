"""First-level clustering, representatives and pruning rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from odia_stream.clustering.first_level import agglomerate
from odia_stream.clustering.merge import weighted_representative
from odia_stream.clustering.pruning import argument_completeness, near_duplicates, select_examples


def _unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_agglomerate_finds_groups_without_a_preset_count() -> None:
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(5, 32)).tolist())
    points = np.concatenate([_unit((c + 0.02 * rng.normal(size=(20, 32))).tolist()) for c in centres])
    labels = agglomerate(points, 0.1)
    assert len(set(labels.tolist())) == 5
    for k in range(5):
        assert len(set(labels[k * 20 : (k + 1) * 20].tolist())) == 1
    assert labels[0] == 0  # numbered by first appearance


def test_agglomerate_edge_sizes() -> None:
    assert agglomerate(np.zeros((0, 4), np.float32), 0.1).tolist() == []
    assert agglomerate(_unit([[1, 0]]), 0.1).tolist() == [0]


def test_weighted_representative_leans_to_the_popular_query() -> None:
    v = _unit([[1, 0], [0, 1]])
    rep = weighted_representative(v, [9, 1])
    assert rep[0] > rep[1]
    assert abs(float(np.linalg.norm(rep)) - 1) < 1e-6


def test_near_duplicates() -> None:
    existing = _unit([[1, 0, 0], [0, 1, 0]])
    new = _unit([[1, 0.01, 0], [0, 0, 1]])
    assert near_duplicates(new, existing, 0.99) == [0, None]
    assert near_duplicates(new, np.zeros((0, 3), np.float32), 0.99) == [None, None]


@dataclass(frozen=True)
class Ex:
    event_id: str
    function: str
    timestamp: datetime
    completeness: int


def test_examples_prefer_complete_then_recent_and_cap_per_function() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    exs = [
        Ex("old-full", "play", t0, 2),
        Ex("new-partial", "play", t0 + timedelta(days=1), 1),
        Ex("new-full", "play", t0 + timedelta(days=2), 2),
        Ex("other", "search", t0, 0),
    ]
    kept = select_examples(exs, cap=2)
    assert [e.event_id for e in kept] == ["new-full", "old-full", "other"]


def test_argument_completeness_ignores_empty_values() -> None:
    assert argument_completeness({"a": "x", "b": "", "c": None, "d": [], "e": 0}) == 2
