"""Stage-2 classifiers on real SNIPS embeddings: held-out predictions, exported weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from odia_stream.embedding import Embedder
from odia_stream.routing import COMPLEX, CONTEXT_FEATURES, LinearRouteModel
from odia_stream.routing.classifier_training import train_river, train_sklearn
from odia_stream.routing.features import context_features, feature_matrix
from schemas import FCLogEvent


@pytest.fixture(scope="module")
def snips_items(snips_events: list[FCLogEvent], embedder: Embedder) -> tuple[np.ndarray, list[str]]:
    """Features and intents of 70 SNIPS queries per intent (real embeddings)."""
    picked: dict[str, list[FCLogEvent]] = {}
    for ev in snips_events:
        assert ev.call is not None
        if len(picked.setdefault(ev.call.name, [])) < 70:
            picked[ev.call.name].append(ev)
    events = [e for evs in picked.values() for e in evs]
    order = np.random.default_rng(3).permutation(len(events))
    events = [events[i] for i in order]
    x = feature_matrix(
        embedder.embed([e.query for e in events]), np.stack([context_features(e.query, [], len(e.tools)) for e in events])
    )
    return x, [e.call.name for e in events]  # type: ignore[union-attr]


def _oos_accuracy(oos: list[str | None], labels: list[str]) -> float:
    return sum(p == y for p, y in zip(oos, labels, strict=True)) / len(labels)


def test_river_learns_online_and_its_export_is_the_same_model(snips_items: tuple[np.ndarray, list[str]]) -> None:
    x, y = snips_items
    # The last item's intent is relabelled to a class nobody saw before it: its held-out
    # prediction cannot be that class (predict-then-learn).
    labels: list[str | None] = [*y[:-1], "late_class"]
    labels[5] = None  # an unlabelled item is predicted but never learned
    trained = train_river(x, labels, np.ones(len(y)), embedding_dim=x.shape[1] - len(CONTEXT_FEATURES))
    assert trained.oos_class[0] is None and trained.oos_score[0] == -math.inf
    assert trained.oos_class[-1] != "late_class" and "late_class" in trained.model.classes
    assert _oos_accuracy(trained.oos_class[:-1], y[:-1]) > 0.75
    river_model, scale = trained.estimator, trained.input_scale
    assert river_model is not None and scale is not None
    for i in (1, 50, 200):
        expected = river_model.predict_proba_one(dict(enumerate((x[i] * scale).tolist())))  # type: ignore[attr-defined]
        got = dict(zip(trained.model.classes, trained.model.proba(x[i]).tolist(), strict=True))
        assert got == pytest.approx(expected, abs=1e-4)


def test_sklearn_cross_fits_and_its_export_is_the_same_model(snips_items: tuple[np.ndarray, list[str]]) -> None:
    x, y = snips_items
    trained = train_sklearn(x, y, np.ones(len(y)), folds=3, seed=0)
    assert all(c is not None for c in trained.oos_class)
    assert _oos_accuracy(trained.oos_class, y) > 0.85
    sk = trained.estimator
    assert sk is not None
    np.testing.assert_allclose(trained.model.proba(x[:20]), sk.predict_proba(x[:20].astype(np.float64)), atol=1e-4)  # type: ignore[attr-defined]
    # Held-out predictions are worse than in-sample ones (the model did not see those items).
    in_sample = trained.model.best_many(x)[0]
    assert _oos_accuracy(in_sample, y) >= _oos_accuracy(trained.oos_class, y)


def test_a_single_class_gives_a_constant_model_and_no_labels_is_an_error() -> None:
    x = np.eye(4, dtype=np.float32)
    trained = train_sklearn(x, ["f", "f", None, "f"], np.ones(4), folds=2)
    assert trained.model.classes == ("f",) and trained.model.best(x[0]) == ("f", 1.0)
    with pytest.raises(ValueError, match="no labelled"):
        train_river(x, [None] * 4, np.ones(4), embedding_dim=2)
    with pytest.raises(ValueError, match="positive"):
        train_sklearn(x, ["a", "b", "a", "b"], np.zeros(4))


def test_linear_models_give_probabilities_and_refuse_bad_shapes() -> None:
    rng = np.random.default_rng(0)
    for link in ("softmax", "ovr"):
        m = LinearRouteModel(("a", "b", COMPLEX), rng.normal(size=(3, 5)), rng.normal(size=3), link)  # type: ignore[arg-type]
        p = m.proba(rng.normal(size=(4, 5)))
        assert p.shape == (4, 3) and np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all()
        cls, score = m.best(rng.normal(size=5))
        assert cls in m.classes and 0 < score <= 1
        with pytest.raises(ValueError, match="features"):
            m.proba(np.zeros(4))
    with pytest.raises(ValueError):
        LinearRouteModel(("a", "a"), np.zeros((2, 3)), np.zeros(2), "softmax")
    with pytest.raises(ValueError):
        LinearRouteModel(("a",), np.zeros((2, 3)), np.zeros(2), "softmax")


def _group_and_cluster(group_calls: dict[str, int], cluster_label: str, dominant: str | None):
    from collections import Counter

    from odia_stream.clustering.records import Cluster, QueryGroup

    vec = np.ones(2, dtype=np.float32)
    group = QueryGroup(1, "s", "app", "q", "q", 7, vec, sum(group_calls.values()), Counter(group_calls))
    cluster = Cluster(7, "s", "app", vec, label=cluster_label, dominant_function=dominant)
    return group, cluster


@pytest.mark.parametrize(
    ("group_calls", "cluster_label", "dominant", "simple", "every"),
    [
        ({"play": 3}, "simple", "play", "play", "play"),
        ({"stop": 2, "play": 1}, "simple", "play", COMPLEX, "stop"),  # disagrees with its cluster
        ({"stop": 2}, "undecided", None, None, "stop"),  # a few-shot function teaches the classifier
        ({"play": 2}, "complex", "play", COMPLEX, COMPLEX),  # complex clusters still veto
        ({"<no_call>": 2}, "undecided", None, None, COMPLEX),  # no call: never small
        ({"pay": 4}, "undecided", None, None, COMPLEX),  # a function the small model may not answer
    ],
)
def test_classifier_labels_learn_from_simple_clusters_or_every_known_function(
    group_calls: dict[str, int], cluster_label: str, dominant: str | None, simple: str | None, every: str | None
) -> None:
    from odia_stream.labels import NO_CALL
    from odia_stream.routing.builder import classifier_label

    group_calls = {NO_CALL if k == "<no_call>" else k: v for k, v in group_calls.items()}
    group, cluster = _group_and_cluster(group_calls, cluster_label, dominant)

    def routable(fn: str | None) -> bool:
        return fn is not None and fn != NO_CALL and fn != "pay"

    assert classifier_label(group, cluster, routable, "skip", "simple") == simple
    assert classifier_label(group, cluster, routable, "skip") == every  # the default, as the setting's
    assert classifier_label(group, cluster, routable, "skip", "all") == every
