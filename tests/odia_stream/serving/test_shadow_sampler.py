"""The shadow sampler is a seeded pure function of the request id with the configured share."""

from __future__ import annotations

import pytest

from odia_stream.serving.shadow import ShadowSampler


def test_share_is_met_and_reproducible() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    a, b = ShadowSampler(0.1, seed=3), ShadowSampler(0.1, seed=3)
    picked = [i for i in ids if a.sampled(i)]
    assert picked == [i for i in ids if b.sampled(i)]
    assert 0.09 < len(picked) / len(ids) < 0.11
    other = {i for i in ids if ShadowSampler(0.1, seed=4).sampled(i)}
    assert other != set(picked)


def test_edges_and_bad_shares() -> None:
    assert not any(ShadowSampler(0.0).sampled(f"r{i}") for i in range(100))
    assert all(ShadowSampler(1.0).sampled(f"r{i}") for i in range(100))
    with pytest.raises(ValueError):
        ShadowSampler(1.5)
