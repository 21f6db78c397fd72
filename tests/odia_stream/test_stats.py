"""Shared statistics."""

from __future__ import annotations

from odia_stream.stats import wilson_lower_bound


def test_wilson_bound_is_below_the_share_and_tightens_with_support() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    small, large = wilson_lower_bound(9, 10), wilson_lower_bound(900, 1000)
    assert small < large < 0.9
    assert wilson_lower_bound(10, 10) < 1.0
