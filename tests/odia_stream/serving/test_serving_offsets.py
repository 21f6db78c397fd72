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


def test_a_finish_from_an_earlier_assignment_is_not_taken_for_the_offset_read_again() -> None:
    t = OffsetTracker()
    first = t.started(2, 4)
    t.started(3, 0)
    assert t.pending([2]) == 1 and t.pending([2, 3]) == 2 and t.pending() == 2
    t.forget([2])  # revoked while offset 4 was open, then assigned again: 4 is read again
    again = t.started(2, 4)
    assert again != first
    assert t.finished(2, 4, first) is False  # the late answer of the first read
    assert t.committable()[2] == 4 and t.pending([2]) == 1
    assert t.finished(2, 4, again) is True
    assert t.committable()[2] == 5 and t.pending([2]) == 0


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


def test_a_forgotten_partition_remembers_where_its_answers_end() -> None:
    t = OffsetTracker()
    assert t.resume_offset(0) is None
    for o in range(3):
        t.started(0, o)
    t.finished(0, 0)
    t.finished(0, 2)
    t.forget([0])  # offset 1 still open: resuming must read it again
    assert t.resume_offset(0) == 1
    t.forget([0])  # revoked again before anything was read: still 1
    assert t.resume_offset(0) == 1
    t.resumed(0, 1)
    assert t.resume_offset(0) is None
    assert t.to_commit() == {0: 1}, "the resumed position is committed (the revoke's commit may have failed)"
    t.started(0, 1)
    t.finished(0, 1)
    assert t.committable() == {0: 2}
    with pytest.raises(ValueError):
        t.resumed(0, -1)


def test_releasing_partitions_returns_their_offsets_to_commit_and_forgets_them() -> None:
    t = OffsetTracker()
    for p in (0, 1, 2):
        t.started(p, 0)
        t.finished(p, 0)
    t.started(0, 1)  # open when released: the commit stops below it
    t.mark_committed({2: 1})
    assert t.release([0, 2]) == {0: 1}, "only what moved, only of the released partitions"
    assert t.committable() == {1: 1} and t.pending() == 0
    assert t.resume_offset(0) == 1 and t.resume_offset(2) == 1
    assert t.release([0]) == {}


def test_a_returning_partition_resumes_after_its_answers_when_the_group_is_behind() -> None:
    t = OffsetTracker()
    for p in (0, 1, 2):
        for o in range(3):
            t.started(p, o)
            t.finished(p, o)
    t.forget([0, 1, 2])
    t.started(3, 0)  # never forgotten: nothing to resume
    # 0: the revoke's commit was refused (none committed); 1: committed further meanwhile; 2: behind.
    starts = t.resume_after({0: -1001, 1: 5, 2: 1, 3: -1001})
    assert starts == {0: 3, 2: 3}
    assert t.to_commit() == {0: 3, 2: 3, 3: 0}, "resumed positions are committed next"
    assert t.resume_offset(0) is None and t.resume_offset(2) is None
    assert t.resume_offset(1) == 3, "a partition starting at the group's offset keeps its resume offset"
