"""Training the stage-2 classifier: online with river (prequential) or in batch with scikit-learn.

Items are the learner's query groups: a feature vector, a label (a function, :data:`COMPLEX`, or
``None`` for groups that only serve calibration), and a weight (the group's record count).

* :func:`train_river`: one-vs-rest logistic regression learned online, one item at a time in the
  given order, predicting each item *before* learning it (prequential), so every item gets an
  out-of-sample prediction on the way. Per-item weights are damped (``1 + ln count``) because
  SGD steps scale with them. The model can keep learning as new labelled groups stream in.
* :func:`train_sklearn`: multinomial logistic regression (lbfgs, exact ``count`` weights);
  out-of-sample predictions come from ``folds``-fold cross-fitting over query groups, the final
  model is fitted on every labelled item.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from odia_stream.routing.classifier import LinearRouteModel, TrainedClassifier


def _check(features: np.ndarray, labels: Sequence[str | None], weights: np.ndarray) -> list[int]:
    if features.ndim != 2 or len(features) != len(labels) or len(weights) != len(labels):
        raise ValueError(f"features {features.shape}, {len(labels)} labels and {len(weights)} weights do not fit")
    if np.any(np.asarray(weights) <= 0):
        raise ValueError("weights must be positive")
    labelled = [i for i, y in enumerate(labels) if y is not None]
    if not labelled:
        raise ValueError("no labelled items to learn from")
    return labelled


def _constant(label: str, n_features: int) -> LinearRouteModel:
    return LinearRouteModel((label,), np.zeros((1, n_features), np.float32), np.zeros(1, np.float32), "softmax")


def train_river(
    features: np.ndarray,
    labels: Sequence[str | None],
    weights: np.ndarray,
    *,
    embedding_dim: int,
    learning_rate: float = 0.05,
    l2: float = 0.0,
    progress: bool = False,
) -> TrainedClassifier:
    """Prequential one-vs-rest logistic regression (river), items in the given order.

    The embedding part of the features is scaled by ``sqrt(embedding_dim)`` while learning (unit
    vectors have tiny components); the exported weights absorb the scale.
    """
    from river import linear_model, multiclass, optim

    _check(features, labels, weights)
    start = time.perf_counter()
    n, d = features.shape
    scale = np.ones(d, dtype=np.float64)
    scale[:embedding_dim] = math.sqrt(embedding_dim)
    model = multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=l2)
    )
    oos_class: list[str | None] = [None] * n
    oos_score = np.full(n, -np.inf)
    for i in tqdm(range(n), desc="router classifier (river, prequential)", unit="query", disable=not progress):
        x = dict(enumerate((features[i] * scale).tolist()))
        if model.classifiers:
            proba = model.predict_proba_one(x)
            best = max(proba, key=proba.__getitem__)
            oos_class[i], oos_score[i] = best, proba[best]
        y = labels[i]
        if y is not None:
            model.learn_one(x, y, w=1.0 + math.log(float(weights[i])))
    classes = sorted(model.classifiers)
    if len(classes) == 1:
        return TrainedClassifier(
            _constant(classes[0], d), "river", oos_class, oos_score, time.perf_counter() - start, model, scale
        )
    w = np.zeros((len(classes), d), dtype=np.float64)
    b = np.zeros(len(classes), dtype=np.float64)
    for r, label in enumerate(classes):
        clf = model.classifiers[label]
        for j, value in clf.weights.items():
            w[r, int(j)] = value
        b[r] = clf.intercept
    exported = LinearRouteModel(tuple(classes), (w * scale).astype(np.float32), b.astype(np.float32), "ovr")
    return TrainedClassifier(exported, "river", oos_class, oos_score, time.perf_counter() - start, model, scale)


def _fit_sklearn(
    x: np.ndarray, y: list[str], w: np.ndarray, c: float, max_iter: int
) -> tuple[LinearRouteModel, object | None]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    classes = sorted(set(y))
    if len(classes) == 1:
        return _constant(classes[0], x.shape[1]), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=c, max_iter=max_iter).fit(x, y, sample_weight=w)
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary: p(class 1) = sigmoid(z) = softmax([0, z])
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    return LinearRouteModel(tuple(str(k) for k in clf.classes_), coef, intercept, "softmax"), clf


def train_sklearn(
    features: np.ndarray,
    labels: Sequence[str | None],
    weights: np.ndarray,
    *,
    c: float = 10.0,
    folds: int = 3,
    seed: int = 0,
    max_iter: int = 300,
    progress: bool = False,
) -> TrainedClassifier:
    """Multinomial logistic regression; out-of-fold predictions by ``folds``-fold cross-fitting."""
    if folds < 2:
        raise ValueError("folds must be at least 2")
    labelled = set(_check(features, labels, weights))
    start = time.perf_counter()
    n = len(labels)
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    oos_class: list[str | None] = [None] * n
    oos_score = np.full(n, -np.inf)
    x = np.asarray(features, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    for k in tqdm(range(folds + 1), desc="router classifier (sklearn, cross-fit)", unit="fit", disable=not progress):
        if k == folds:
            train = sorted(labelled)
        else:
            train = [i for i in sorted(labelled) if fold_of[i] != k]
        if not train:
            continue
        model, estimator = _fit_sklearn(x[train], [labels[i] for i in train], w[train], c, max_iter)  # type: ignore[misc]
        if k == folds:
            return TrainedClassifier(model, "sklearn", oos_class, oos_score, time.perf_counter() - start, estimator)
        held = np.flatnonzero(fold_of == k)
        if len(held):
            best, score = model.best_many(x[held])
            for i, cls, s in zip(held, best, score, strict=True):
                oos_class[int(i)], oos_score[int(i)] = cls, float(s)
    raise AssertionError("unreachable: the final fit always runs")
