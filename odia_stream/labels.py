"""Simple/complex labels from a cluster's function distribution, with a confidence bound.

A raw share on three records says little: a cluster is *simple* only when the Wilson lower
bound of its dominant function's share reaches the threshold.

>>> labeler = WilsonLabeler(simple_share=0.8, z=1.96, min_support=5)
>>> labeler.label({"play": 3}).label
'undecided'
>>> labeler.label({"play": 60, "search": 1}).label
'simple'
>>> labeler.label({"play": 30, "search": 25}).label
'complex'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from odia_stream.stats import dominant as dominant_of
from odia_stream.stats import wilson_lower_bound
from schemas import ClusterLabel

#: The "function" of a record whose large-model answer was no call.
NO_CALL = "<none>"


@dataclass(frozen=True)
class LabelDecision:
    """A label with the figures it was decided on."""

    label: ClusterLabel
    dominant_function: str | None
    dominant_share: float
    share_lower_bound: float
    support: int


@dataclass(frozen=True)
class WilsonLabeler:
    """Label a function distribution: simple / complex / undecided.

    - fewer than ``min_support`` records: ``undecided``;
    - the dominant function's Wilson lower bound ≥ ``simple_share``: ``simple``
      (a cluster dominated by *no call* is never simple: the small model does not decline);
    - the upper reach cannot get there any more (share itself below threshold): ``complex``;
    - otherwise ``undecided`` until more records arrive.
    """

    simple_share: float = 0.8
    z: float = 1.96
    min_support: int = 5

    def label(self, function_counts: Mapping[str, int]) -> LabelDecision:
        """Decide the label of one cluster's function counts."""
        total = sum(function_counts.values())
        if total == 0:
            return LabelDecision("undecided", None, 0.0, 0.0, 0)
        dominant = dominant_of(function_counts)
        if dominant is None:
            return LabelDecision("undecided", None, 0.0, 0.0, total)
        top = function_counts[dominant]
        share = top / total
        bound = wilson_lower_bound(top, total, self.z)
        if total < self.min_support:
            label: ClusterLabel = "undecided"
        elif bound >= self.simple_share and dominant != NO_CALL:
            label = "simple"
        elif share < self.simple_share or dominant == NO_CALL:
            label = "complex"
        else:
            label = "undecided"
        return LabelDecision(label, dominant, share, bound, total)
