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


def test_an_offset_delivered_again_in_the_same_assignment_is_not_taken_up_twice() -> None:
    t = OffsetTracker()
    for o in range(4):
        assert t.started(0, o) == 0
    t.finished(0, 1)
    t.finished(0, 0)
    assert [t.started(0, o) for o in range(4)] == [None] * 4, "open or answered: all seen already"
    assert t.pending([0]) == 2
    t.finished(0, 2)
    t.finished(0, 3)
    assert t.started(0, 2) is None and t.started(0, 4) == 0
    t.forget([0])
    assert t.started(0, 2) == 1, "a new assignment reads it afresh"


def test_messages_of_an_earlier_fetch_then_the_lower_offsets_read_again_are_all_answered() -> None:
    """Messages fetched before a rebalance (5, 6) arrive first, then the new assignment reads from
    the committed offset (3): 3 and 4 are new, 5 and 6 repeats."""
    t = OffsetTracker()
    assert t.started(0, 5) == 0 and t.started(0, 6) == 0
    assert t.started(0, 3) == 0 and t.started(0, 4) == 0
    assert t.started(0, 5) is None and t.started(0, 6) is None
    assert t.committable() == {0: 3}
    for o in (3, 4, 5, 6):
        t.finished(0, o)
    assert t.committable() == {0: 7}


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """A partition's log (offsets with gaps: compaction, transaction markers) and what the client
    delivers: runs of consecutive log entries; the first starts anywhere, each later one where the
    last left off or earlier (a fetch restarted: messages fetched before a rebalance, then read
    again from the committed offset)."""
    log = sorted(draw(st.sets(st.integers(min_value=0, max_value=40), min_size=1, max_size=25)))
    out: list[int] = []
    reached: int | None = None  # index of the log entry after the furthest delivery
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        top = len(log) - 1 if reached is None else min(reached, len(log) - 1)
        i = draw(st.integers(min_value=0, max_value=top))
        j = draw(st.integers(min_value=i + 1, max_value=len(log)))
        out.extend(log[i:j])
        reached = j if reached is None else max(reached, j)
    return log, out


@given(_deliveries(), st.randoms())
def test_every_delivered_offset_is_taken_up_once(case: tuple[list[int], list[int]], rnd: random.Random) -> None:
    _, deliveries = case
    t = OffsetTracker()
    taken: list[int] = []
    open_: list[int] = []
    for o in deliveries:
        if t.started(0, o) is not None:
            taken.append(o)
            open_.append(o)
        if open_ and rnd.random() < 0.5:  # answer one open request, in any order
            t.finished(0, open_.pop(rnd.randrange(len(open_))))
    assert sorted(taken) == sorted(set(deliveries)), "each offset once"
    for o in open_:
        t.finished(0, o)
    assert t.pending() == 0
    assert t.committable() == {0: max(deliveries) + 1}
