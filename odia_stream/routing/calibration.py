"""Choosing a decision threshold from held-out scores to reach a target precision.

Each calibration item is a held-out query group with the score the router gave its best
function, ``correct`` (records calling that function) and ``total`` (records of the query). The
precision promised is per record (right routed records / routed records). Two methods:

* ``records`` (the default): every record an independent draw.
* ``grouped`` (docs/router.md, "Calibration"): the evidence is counted by query
  group. Repeated records of one query are not independent draws (the router decides the same way
  for all of them), so a cut's precision bound uses the groups' effective number (Kish:
  ``(sum t)^2 / sum t^2``): the number of groups when they are equally large, far fewer when a
  few popular queries carry most records. The chosen threshold is the lowest score whose bound
  reaches the target.

Choosing the lowest passing cut is a search over thresholds. In simulated held-out sets
(tests/odia_stream/routing/test_router_calibration.py) the chosen cut's true precision reached the
target in at least 95% of draws with ``z`` = 1.645 (one-sided 95%); docs/router.md says why no
further correction for the search is made.

>>> t = choose_threshold([0.9, 0.8, 0.7, 0.6], [10, 10, 9, 0], [10, 10, 10, 10], target=0.9, z=0.0)
>>> t.value, round(t.precision, 3), t.routed
(0.7, 0.967, 30.0)
>>> choose_threshold([0.9], [0], [5], target=0.9).enabled
False
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from odia_stream.stats import wilson_lower_bound


@dataclass(frozen=True)
class Threshold:
    """A calibrated threshold (``inf`` = the stage never routes) and what it achieved on the items."""

    value: float
    precision: float
    lower_bound: float
    routed: float
    correct: float
    items: int
    total: float
    #: Independent evidence behind ``lower_bound``: the groups' effective number (``grouped``) or
    #: the routed records (``records``); NaN when disabled or unknown (older snapshots).
    effective_n: float = math.nan
    #: z the bound was computed with; NaN when unknown (older snapshots).
    z: float = math.nan

    @property
    def enabled(self) -> bool:
        """Whether anything can pass the threshold."""
        return math.isfinite(self.value)

    @property
    def coverage(self) -> float:
        """Share of the items' records routed and right at this threshold."""
        return self.correct / self.total if self.total else 0.0

    @classmethod
    def disabled(cls, items: int = 0, total: float = 0.0) -> Threshold:
        """A threshold nothing passes."""
        return cls(math.inf, math.nan, 0.0, 0.0, 0.0, items, total)


@dataclass(frozen=True)
class CurvePoint:
    """Precision and coverage of the items at one threshold."""

    threshold: float
    precision: float
    coverage: float
    routed_share: float


def _as_arrays(
    scores: Sequence[float] | np.ndarray, correct: Sequence[float] | np.ndarray, total: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    t = np.asarray(total, dtype=np.float64)
    if not (s.shape == c.shape == t.shape) or s.ndim != 1:
        raise ValueError(f"scores, correct and total must be 1-D of one length, got {s.shape}, {c.shape}, {t.shape}")
    if np.any(c < 0) or np.any(c > t):
        raise ValueError("each item needs 0 <= correct <= total")
    if np.any(np.isnan(s)):
        raise ValueError("scores must not be NaN (use -inf for items that can never route)")
    return s, c, t


CalibrationMethod = Literal["grouped", "records"]


def choose_threshold(
    scores: Sequence[float] | np.ndarray,
    correct: Sequence[float] | np.ndarray,
    total: Sequence[float] | np.ndarray,
    *,
    target: float,
    z: float = 1.0,
    min_routed: float = 1.0,
    method: CalibrationMethod = "records",
) -> Threshold:
    """The lowest threshold whose routed items reach ``target`` precision (lower bound at ``z``;
    ``method`` as in the module docstring).

    Only cuts between distinct scores are considered; ``min_routed`` records must pass; items
    scored ``-inf`` never pass. Returns :meth:`Threshold.disabled` when no cut qualifies.
    """
    if not 0 < target < 1:
        raise ValueError(f"target precision must be in (0, 1), got {target}")
    if z < 0:
        raise ValueError(f"z must be >= 0, got {z}")
    s, c, t = _as_arrays(scores, correct, total)
    grand = float(t.sum())
    finite = np.isfinite(s)
    if not finite.any():
        return Threshold.disabled(len(s), grand)
    order = np.argsort(-s[finite], kind="stable")
    ss, cc, tt = s[finite][order], np.cumsum(c[finite][order]), np.cumsum(t[finite][order])
    squares = np.cumsum(t[finite][order] ** 2)
    # The last index of each run of equal scores: a cut must take a whole run.
    ends = np.flatnonzero(np.append(ss[1:] != ss[:-1], True))
    if method not in ("grouped", "records"):
        raise ValueError(f"unknown calibration method {method!r}")
    best: Threshold | None = None
    for i in ends:
        routed, right = float(tt[i]), float(cc[i])
        if routed < min_routed or routed <= 0:
            continue
        n = routed * routed / float(squares[i]) if method == "grouped" else routed
        p = right / routed
        lb = wilson_lower_bound(p * n, n, z) if z > 0 else p  # type: ignore[arg-type]
        if lb >= target:
            best = Threshold(float(ss[i]), p, lb, routed, right, len(s), grand, n, z)
    return best if best is not None else Threshold.disabled(len(s), grand)


def precision_curve(
    scores: Sequence[float] | np.ndarray,
    correct: Sequence[float] | np.ndarray,
    total: Sequence[float] | np.ndarray,
    thresholds: Sequence[float],
) -> list[CurvePoint]:
    """Precision, coverage (right / all records) and routed share at each threshold."""
    s, c, t = _as_arrays(scores, correct, total)
    grand = float(t.sum()) or 1.0
    out = []
    for th in thresholds:
        m = s >= th
        routed, right = float(t[m].sum()), float(c[m].sum())
        out.append(CurvePoint(float(th), right / routed if routed else math.nan, right / grand, routed / grand))
    return out
