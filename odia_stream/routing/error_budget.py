"""Per-cluster error budgets: a cluster routes small only while its agreement bound holds.

Each cluster starts from a prior, its own dominant share (``dominant`` of ``size`` records call
its function: the best the small model can do by calling it), capped at ``prior_cap`` records so
that shadow checks can still move a large cluster. Shadow checks in serving then record whether
the small model agreed with the large one. The cluster routes small while the Wilson lower bound
of ``(prior successes + agreed) / (prior records + checks)`` stays at or above ``target``.

>>> b = ErrorBudget(target=0.9, z=1.645, prior_cap=100)
>>> b.seed("c1", successes=100, total=100)
>>> b.allows("c1")
True
>>> for _ in range(10):
...     b.record("c1", agreed=False)
>>> b.allows("c1"), round(b.lower_bound("c1"), 3)
(False, 0.854)
>>> b.allows("never-seen")          # no prior and no checks: nothing speaks against it
True
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass

from odia_stream.stats import wilson_lower_bound


@dataclass(frozen=True)
class BudgetState:
    """One cluster's budget: prior pseudo-counts and observed shadow checks."""

    prior_successes: float
    prior_total: float
    agreed: int
    checked: int
    lower_bound: float
    allows: bool


class ErrorBudget:
    """Agreement bounds per cluster key (thread-safe)."""

    def __init__(self, *, target: float, z: float = 1.645, prior_cap: int = 100) -> None:
        if not 0 < target < 1:
            raise ValueError(f"error-budget target must be in (0, 1), got {target}")
        if z < 0 or prior_cap < 0:
            raise ValueError("z and prior_cap must be >= 0")
        self.target = target
        self.z = z
        self.prior_cap = prior_cap
        self._prior: dict[Hashable, tuple[float, float]] = {}
        self._seen: dict[Hashable, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def seed(self, key: Hashable, *, successes: float, total: float) -> None:
        """Set ``key``'s prior from its dominant count and size (scaled down to ``prior_cap``)."""
        if total < 0 or not 0 <= successes <= total:
            raise ValueError(f"prior needs 0 <= successes <= total, got {successes}/{total}")
        scale = min(1.0, self.prior_cap / total) if total > 0 else 0.0
        with self._lock:
            self._prior[key] = (successes * scale, total * scale)

    def prior_bound(self, successes: float, total: float) -> float:
        """The lower bound a cluster would start from with this dominant count and size (no checks)."""
        if total <= 0:
            return 1.0
        scale = min(1.0, self.prior_cap / total)
        return wilson_lower_bound(successes * scale, total * scale, self.z)  # type: ignore[arg-type]

    def record(self, key: Hashable, agreed: bool) -> None:
        """Record one shadow check of ``key``."""
        with self._lock:
            ok, n = self._seen.get(key, (0, 0))
            self._seen[key] = (ok + int(bool(agreed)), n + 1)

    def _bound(self, key: Hashable) -> tuple[float, float, int, int, float]:
        ps, pt = self._prior.get(key, (0.0, 0.0))
        ok, n = self._seen.get(key, (0, 0))
        total = pt + n
        lb = wilson_lower_bound(ps + ok, total, self.z) if total > 0 else 1.0  # type: ignore[arg-type]
        return ps, pt, ok, n, lb

    def lower_bound(self, key: Hashable) -> float:
        """The agreement lower bound of ``key`` (1.0 when nothing is known)."""
        with self._lock:
            return self._bound(key)[4]

    def allows(self, key: Hashable) -> bool:
        """Whether ``key`` may still route small."""
        return self.lower_bound(key) >= self.target

    def state(self, key: Hashable) -> BudgetState:
        """Everything known about ``key``'s budget."""
        with self._lock:
            ps, pt, ok, n, lb = self._bound(key)
        return BudgetState(ps, pt, ok, n, lb, lb >= self.target)
