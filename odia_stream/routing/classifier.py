"""Stage-2 classifier: "simple, function F" or "complex" from the query embedding and context.

Whatever trained it (river online, scikit-learn in batch), the router runs a
:class:`LinearRouteModel`: a weight matrix over the feature vector and a link (``softmax`` for
multinomial logistic regression, ``ovr`` for one-vs-rest logistic models normalised as river
does), so inference is one matrix-vector product and a snapshot holds plain arrays, no pickles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: The class of queries that no single function answers (complex clusters).
COMPLEX = "<complex>"

Link = Literal["softmax", "ovr"]


@dataclass(frozen=True, eq=False)
class LinearRouteModel:
    """``classes`` (functions and possibly :data:`COMPLEX`), ``weights`` ``(C, D)``, ``bias`` ``(C,)``."""

    classes: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray
    link: Link

    def __post_init__(self) -> None:
        w, b = np.asarray(self.weights), np.asarray(self.bias)
        if w.ndim != 2 or b.shape != (w.shape[0],) or len(self.classes) != w.shape[0] or not self.classes:
            raise ValueError(f"need {len(self.classes)} classes, weights (C, D) and bias (C,), got {w.shape}, {b.shape}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be distinct")
        if self.link not in ("softmax", "ovr"):
            raise ValueError(f"unknown link {self.link!r}")
        object.__setattr__(self, "weights", np.ascontiguousarray(w, dtype=np.float32))
        object.__setattr__(self, "bias", np.ascontiguousarray(b, dtype=np.float32))

    @property
    def n_features(self) -> int:
        """Length of the feature vector the model reads."""
        return int(self.weights.shape[1])

    def proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, ``(n, C)`` for ``(n, D)`` features (or ``(C,)`` for one vector)."""
        x = np.asarray(features, dtype=np.float32)
        if x.shape[-1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {x.shape[-1]}")
        z = x @ self.weights.T + self.bias
        if self.link == "softmax":
            z = z - z.max(axis=-1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        total = p.sum(axis=-1, keepdims=True)
        return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[-1]), where=total > 0)

    def best(self, features: np.ndarray) -> tuple[str, float]:
        """The most probable class of one feature vector and its probability."""
        p = self.proba(features)
        j = int(np.argmax(p))
        return self.classes[j], float(p[j])

    def best_many(self, features: np.ndarray) -> tuple[list[str], np.ndarray]:
        """:meth:`best` for each row."""
        p = self.proba(features)
        j = p.argmax(axis=1)
        return [self.classes[i] for i in j], p[np.arange(len(j)), j]


@dataclass(frozen=True, eq=False)
class TrainedClassifier:
    """A model and its out-of-sample predictions on every item (for calibration).

    ``oos_class[i]`` / ``oos_score[i]``: the best class and its probability for item ``i`` from a
    model that had not learned item ``i`` (prequential or out-of-fold); ``None`` / ``-inf`` when no
    model existed yet.
    """

    model: LinearRouteModel
    kind: Literal["river", "sklearn"]
    oos_class: list[str | None]
    oos_score: np.ndarray
    train_seconds: float
    #: The trained library model (river keeps learning online from it); not part of a snapshot.
    estimator: object | None = None
    #: Feature scale the estimator was trained on (``model`` absorbs it).
    input_scale: np.ndarray | None = None
