"""Statistics shared by the learner's labels, the router's calibration and its error budgets."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["dominant", "wilson_lower_bound", "wilson_upper_bound"]


def wilson_lower_bound(successes: int, total: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval for a proportion (0 when ``total`` is 0).

    >>> round(wilson_lower_bound(95, 100), 3)
    0.888
    >>> wilson_lower_bound(0, 0)
    0.0
    """
    if total <= 0:
        return 0.0
    p = successes / total
    z2 = z * z
    centre = p + z2 / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - margin) / (1 + z2 / total))


def wilson_upper_bound(successes: int, total: int, z: float = 1.96) -> float:
    """Upper end of the Wilson score interval for a proportion (1 when ``total`` is 0).

    >>> round(wilson_upper_bound(4, 5, 1.645), 3)
    0.954
    >>> wilson_upper_bound(0, 0)
    1.0
    """
    if total <= 0:
        return 1.0
    return 1.0 - wilson_lower_bound(total - successes, total, z)


def dominant(counts: Mapping[str, int]) -> str | None:
    """The key counted most (ties: the alphabetically first); ``None`` when nothing is counted.

    >>> dominant({"stop": 2, "play": 2, "next": 1}), dominant({"play": 0})
    ('play', None)
    """
    return min((k for k, n in counts.items() if n > 0), key=lambda k: (-counts[k], k), default=None)
