"""Wilson labelling."""

from __future__ import annotations

import pytest

from odia_stream.labels import NO_CALL, WilsonLabeler


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
