"""Offsets are committable only up to the lowest unanswered offset of each partition."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odia_stream.serving.offsets import OffsetTracker


def test_commits_stop_at_the_lowest_open_offset() -> None:
    t = OffsetTracker()
    for o in range(5, 10):
        t.started(0, o)
    t.started(1, 0)
    for o in (6, 8, 9):
        t.finished(0, o)
    assert t.committable() == {0: 5, 1: 0}
    t.finished(0, 5)
    assert t.committable()[0] == 7
    t.finished(0, 7)
    t.finished(1, 0)
    assert t.committable() == {0: 10, 1: 1}
    assert t.pending() == 0


def test_to_commit_reports_only_moves() -> None:
    t = OffsetTracker()
    t.started(0, 0)
    t.finished(0, 0)
    assert t.to_commit() == {0: 1}
    t.mark_committed({0: 1})
    assert t.to_commit() == {}
    t.started(0, 1)
    assert t.to_commit() == {}
    t.finished(0, 1)
    assert t.to_commit() == {0: 2}


def test_double_finish_and_unknown_offsets_are_errors() -> None:
    t = OffsetTracker()
    t.started(0, 3)
    t.finished(0, 3)
    with pytest.raises(KeyError):
        t.finished(0, 3)
    with pytest.raises(ValueError):
        t.started(0, -1)


def test_forgotten_partitions_ignore_late_finishes() -> None:
    t = OffsetTracker()
    t.started(2, 4)
    t.forget([2])
    assert t.finished(2, 4) is False
    assert t.committable() == {}


@given(st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=60, unique=True), st.randoms())
def test_committable_never_passes_an_open_offset(offsets: list[int], rnd: random.Random) -> None:
    offsets.sort()
    t = OffsetTracker()
    for o in offsets:
        t.started(0, o)
    done: set[int] = set()
    order = offsets[:]
    rnd.shuffle(order)
    for o in order:
        t.finished(0, o)
        done.add(o)
        commit = t.committable()[0]
        assert all(x in done for x in offsets if x < commit)
        open_ = [x for x in offsets if x not in done]
        assert commit == (min(open_) if open_ else offsets[-1] + 1)
