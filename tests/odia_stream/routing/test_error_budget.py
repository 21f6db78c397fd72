"""Per-cluster error budgets."""

from __future__ import annotations

import threading

import pytest

from odia_stream.stats import wilson_lower_bound
from odia_stream.routing import ErrorBudget


def test_a_pure_cluster_routes_until_shadow_checks_disagree() -> None:
    b = ErrorBudget(target=0.9, z=1.645, prior_cap=50)
    b.seed("c1", successes=400, total=400)          # scaled to 50/50: bound ~0.95
    assert b.allows("c1") and b.state("c1").prior_total == 50
    for _ in range(5):
        b.record("c1", agreed=True)
    assert b.lower_bound("c1") == pytest.approx(wilson_lower_bound(55, 55, 1.645))
    flips = 0
    while b.allows("c1"):
        b.record("c1", agreed=False)
        flips += 1
    assert 1 <= flips <= 5
    st = b.state("c1")
    assert not st.allows and st.checked == 5 + flips and st.agreed == 5


def test_an_impure_cluster_starts_below_target_and_good_checks_bring_it_back() -> None:
    b = ErrorBudget(target=0.9, z=1.645, prior_cap=100)
    b.seed("c2", successes=85, total=100)
    assert not b.allows("c2")
    assert b.prior_bound(85, 100) == pytest.approx(b.lower_bound("c2"))
    for _ in range(400):
        b.record("c2", agreed=True)
    assert b.allows("c2")


def test_unknown_keys_are_allowed_and_bad_arguments_refused() -> None:
    b = ErrorBudget(target=0.95)
    assert b.allows("nothing-known") and b.lower_bound("nothing-known") == 1.0
    with pytest.raises(ValueError):
        ErrorBudget(target=1.0)
    with pytest.raises(ValueError):
        b.seed("c", successes=5, total=4)


def test_records_from_many_threads_are_all_counted() -> None:
    b = ErrorBudget(target=0.5)

    def work() -> None:
        for i in range(500):
            b.record("c", agreed=i % 2 == 0)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.state("c").checked == 2000 and b.state("c").agreed == 1000
