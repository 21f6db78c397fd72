"""Zipf resampling (determinism, skew) and group-aware splits."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from odia_stream.datasets import group_of, split_by_group, zipf_resample
from schemas import FCLogEvent


@pytest.fixture(scope="module")
def base(hb_en_events: list[FCLogEvent]) -> list[FCLogEvent]:
    return hb_en_events


def test_zipf_is_deterministic(base: list[FCLogEvent]) -> None:
    a = [e.event_id for e in zipf_resample(base, 3000, seed=7)]
    b = [e.event_id for e in zipf_resample(base, 3000, seed=7)]
    c = [e.event_id for e in zipf_resample(base, 3000, seed=8)]
    assert a == b and a != c
    assert len(set(a)) == 3000 and all(x.endswith(f"#{k}") for k, x in enumerate(a))


def test_zipf_draws_are_copies_with_new_ids_and_times(base: list[FCLogEvent]) -> None:
    by_id = {e.event_id: e for e in base}
    draws = list(zipf_resample(base, 500, seed=1))
    for k, d in enumerate(draws):
        orig = by_id[d.event_id.rsplit("#", 1)[0]]
        assert d.model_dump(exclude={"event_id", "timestamp"}) == orig.model_dump(
            exclude={"event_id", "timestamp"}
        )
        assert group_of(d) == group_of(orig)
        if k:
            assert d.timestamp > draws[k - 1].timestamp


def test_zipf_is_skewed(base: list[FCLogEvent]) -> None:
    counts = Counter(e.event_id.rsplit("#", 1)[0] for e in zipf_resample(base, 20_000, exponent=1.1, seed=0))
    top = counts.most_common(1)[0][1]
    assert top >= 20 * statistics.median(counts.values())
    assert top > 1000  # rank 1 takes ~1/H(7725, 1.1) ~ 11% of draws
    assert len(counts) < len(base)  # the tail is rarely drawn


def test_zipf_edge_cases(base: list[FCLogEvent]) -> None:
    assert list(zipf_resample(base, 0)) == []
    with pytest.raises(ValueError):
        list(zipf_resample([], 3))
    with pytest.raises(ValueError):
        list(zipf_resample(base, 3, exponent=0))


def test_split_keeps_groups_apart(
    base: list[FCLogEvent], hb_zh_read: tuple[list[FCLogEvent], object]
) -> None:
    events = base + hb_zh_read[0]
    train, test = split_by_group(events, test_fraction=0.2, seed=3)
    assert len(train) + len(test) == len(events)
    assert abs(len(test) / len(events) - 0.2) < 0.01
    assert not {group_of(e) for e in train} & {group_of(e) for e in test}
    # zh and en translations of one base dialogue stay on one side
    test_groups = {group_of(e) for e in test}
    assert any(g.startswith("hammerbench:id=") for g in test_groups)
    again = split_by_group(list(reversed(events)), test_fraction=0.2, seed=3)[1]
    assert {e.event_id for e in again} == {e.event_id for e in test}  # independent of input order


def test_split_of_resampled_events(base: list[FCLogEvent]) -> None:
    draws = list(zipf_resample(base, 5000, seed=2))
    train, test = split_by_group(draws, test_fraction=0.3, seed=0)
    train_bases = {group_of(e) for e in train}
    assert not train_bases & {group_of(e) for e in test}
    assert test and train
    assert split_by_group(draws, test_fraction=0.0, seed=0)[1] == []
    assert split_by_group(draws, test_fraction=1.0, seed=0)[0] == []
