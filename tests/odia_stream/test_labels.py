"""Wilson labelling."""

from __future__ import annotations

import pytest

from odia_stream.labels import NO_CALL, WilsonLabeler, wilson_lower_bound


def test_wilson_bound_is_below_the_share_and_tightens_with_support() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    small, large = wilson_lower_bound(9, 10), wilson_lower_bound(900, 1000)
    assert small < large < 0.9
    assert wilson_lower_bound(10, 10) < 1.0


@pytest.mark.parametrize(
    ("counts", "label"),
    [
        ({"play": 3}, "undecided"),  # 100% on 3 records is not enough support
        ({"play": 8}, "undecided"),  # bound of 8/8 is 0.68 < 0.8
        ({"play": 40}, "simple"),
        ({"play": 95, "search": 5}, "simple"),
        ({"play": 50, "search": 50}, "complex"),
        ({"play": 82, "search": 18}, "undecided"),  # share ≥ 0.8 but bound not yet
        ({NO_CALL: 50}, "complex"),  # no-call clusters are never simple
    ],
)
def test_labels(counts: dict[str, int], label: str) -> None:
    assert WilsonLabeler(0.8, 1.96, 5).label(counts).label == label


def test_dominant_function_ties_break_alphabetically() -> None:
    assert WilsonLabeler().label({"b": 5, "a": 5}).dominant_function == "a"
