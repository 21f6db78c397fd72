"""Offset-aligned micro-batches."""

from __future__ import annotations

from odia_stream.clustering.batching import OffsetAlignedBatcher, SourcedItem


def _payloads(batches: list[list[SourcedItem[int]]]) -> list[list[int]]:
    return [[i.payload for i in b] for b in batches]


def test_windows_are_aligned_to_offsets_per_partition() -> None:
    b: OffsetAlignedBatcher[int] = OffsetAlignedBatcher(3)
    out = []
    for off in range(7):
        out += b.add(SourcedItem("t", 0, off, off))
    assert _payloads(out) == [[0, 1, 2], [3, 4, 5]]
    assert b.pending() == 1


def test_a_restart_mid_window_yields_the_rest_of_the_window() -> None:
    b: OffsetAlignedBatcher[int] = OffsetAlignedBatcher(4)
    out = []
    for off in (2, 3, 4):  # resumed at offset 2
        out += b.add(SourcedItem("t", 0, off, off))
    assert _payloads(out) == [[2, 3]]


def test_gaps_release_the_previous_window() -> None:
    b: OffsetAlignedBatcher[int] = OffsetAlignedBatcher(4)
    assert _payloads(b.add(SourcedItem("t", 0, 1, 1))) == []
    assert _payloads(b.add(SourcedItem("t", 0, 9, 9))) == [[1]]


def test_partitions_are_independent_and_flush_releases_partials() -> None:
    b: OffsetAlignedBatcher[str] = OffsetAlignedBatcher(10)
    b.add(SourcedItem("t", 0, 0, "a"))
    b.add(SourcedItem("t", 1, 0, "b"))
    assert sorted(_payloads(b.flush())) == [["a"], ["b"]]
    assert b.pending() == 0


def test_flush_respects_age() -> None:
    b: OffsetAlignedBatcher[str] = OffsetAlignedBatcher(10)
    b.add(SourcedItem("t", 0, 0, "a"))
    assert b.flush(older_than_s=60) == []
