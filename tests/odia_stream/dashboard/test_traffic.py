"""Coverage and latency per time bucket, from responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odia_stream.dashboard import TrafficSeries
from schemas import LatencyBreakdown, ServeResponse

MakeResponse = Callable[..., ServeResponse]
At = Callable[[float], datetime]


def test_coverage_and_percentiles_per_bucket(make_response: MakeResponse, at: At) -> None:
    s = TrafficSeries(bucket_s=60, max_buckets=10)
    # Bucket 0: 3 small + 1 large; bucket 1: 1 small, 1 large, 2 answered by nobody (errors).
    for i, (by, ms, t) in enumerate([
        ("small", 100, 0), ("small", 200, 10), ("large", 400, 59.999), ("small", 300, 30),
        ("none", 5, 60), ("small", 120, 61), ("large", 1600, 119), ("none", 7, 90),
    ]):
        assert s.apply(make_response(f"r{i}", served_by=by, total_ms=ms, at=at(t)))
    p0, p1 = s.points()
    assert p0.start == at(0) and p1.start == at(60)
    assert (p0.requests, p0.small, p0.large, p0.none, p0.coverage) == (4, 3, 1, 0, 0.75)
    assert (p1.requests, p1.small, p1.large, p1.none, p1.coverage) == (4, 1, 1, 2, 0.25)
    # Linear-interpolated percentiles of [100, 200, 300, 400]: p50 = 250, p90 = 370.
    assert p0.p50_ms == pytest.approx(250) and p0.p90_ms == pytest.approx(370)
    assert p1.p50_ms == pytest.approx((7 + 120) / 2)
    v = s.view()
    assert v.requests == 8 and v.coverage == pytest.approx(4 / 8) and v.dropped == 0
    assert v.p50_ms == pytest.approx(float(np.percentile([100, 200, 400, 300, 5, 120, 1600, 7], 50)))


def test_template_answers_count_as_coverage(make_response: MakeResponse, at: At) -> None:
    s = TrafficSeries(bucket_s=60, max_buckets=10)
    for i, by in enumerate(["template", "template", "small", "large"]):
        assert s.apply(make_response(f"r{i}", served_by=by, total_ms=5, at=at(i)))
    (p,) = s.points()
    assert (p.requests, p.template, p.small, p.large, p.none, p.coverage) == (4, 2, 1, 1, 0, 0.75)
    assert s.view().coverage == pytest.approx(0.75)


def test_only_the_newest_buckets_are_kept(make_response: MakeResponse, at: At) -> None:
    s = TrafficSeries(bucket_s=10, max_buckets=3)
    for i in range(5):  # buckets 0..4: the window keeps 2, 3, 4
        s.apply(make_response(f"r{i}", at=at(10 * i)))
    assert [p.start for p in s.points()] == [at(20), at(30), at(40)]
    assert not s.apply(make_response("late", at=at(15)))  # bucket 1 is out of the window
    assert s.apply(make_response("late-but-kept", at=at(25)))
    assert s.view().dropped == 1 and s.view().requests == 4 and s.view().expired == 2


def test_a_redelivered_response_is_counted_once(make_response: MakeResponse, at: At) -> None:
    s = TrafficSeries(bucket_s=60, max_buckets=5)
    assert s.apply(make_response("same", served_by="small", at=at(1)))
    assert not s.apply(make_response("same", served_by="small", at=at(1)))
    assert s.view().requests == 1 and s.view().dropped == 1


def test_naive_timestamps_are_taken_as_utc(make_response: MakeResponse) -> None:
    s = TrafficSeries(bucket_s=3600, max_buckets=5)
    s.apply(make_response("n", at=datetime(2026, 3, 1, 12, 30)))
    assert s.points()[0].start == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("bucket_s", "max_buckets"), [(0, 5), (-1, 5), (float("nan"), 5), (float("inf"), 5), (60, 0)])
def test_bad_window_is_refused(bucket_s: float, max_buckets: int) -> None:
    with pytest.raises(ValueError):
        TrafficSeries(bucket_s=bucket_s, max_buckets=max_buckets)


def test_empty_series_has_no_figures() -> None:
    v = TrafficSeries(bucket_s=60, max_buckets=5).view()
    assert v.points == [] and v.requests == 0 and v.coverage is None and v.p50_ms is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 30),  # request id (repeats are redeliveries)
            st.sampled_from(["small", "large", "none"]),
            st.floats(0, 5000, allow_nan=False),
            st.integers(0, 600),  # seconds after T0
        ),
        max_size=80,
    ),
    st.integers(1, 6),
)
def test_every_response_is_counted_or_dropped(rows: list[tuple[int, str, float, int]], max_buckets: int) -> None:
    s = TrafficSeries(bucket_s=60, max_buckets=max_buckets)
    t0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    for rid, by, ms, sec in rows:
        s.apply(ServeResponse(
            request_id=f"r{rid}-{sec // 60}" if rid % 2 else f"r{rid}", call=None, served_by=by, route_reason="p",
            latency=LatencyBreakdown(route_ms=0, generate_ms=0, validate_ms=0, total_ms=ms),
            answered_at=datetime.fromtimestamp(t0 + sec, UTC),
        ))
    v = s.view()
    assert v.requests + v.dropped + v.expired == len(rows)
    assert len(v.points) <= max_buckets
    starts = [p.start for p in v.points]
    assert starts == sorted(starts)
    if starts:
        assert (starts[-1] - starts[0]).total_seconds() < 60 * max_buckets
    for p in v.points:
        assert p.requests == p.small + p.large + p.none > 0
        assert 0 <= p.coverage <= 1 and p.p50_ms <= p.p90_ms


def test_small_path_policy_answers_are_counted_by_reason(make_response: MakeResponse, at: At) -> None:
    s = TrafficSeries(bucket_s=60, max_buckets=10)
    reasons = ["hedged", "hedged", "small_busy", "small_not_faster", "cluster_match", "escalated:timeout"]
    for i, reason in enumerate(reasons):
        r = make_response(f"r{i}", served_by="large", at=at(30 * i)).model_copy(update={"route_reason": reason})
        assert s.apply(r)
    assert s.view().small_path == {"hedged": 2, "small_busy": 1, "small_not_faster": 1}
    assert TrafficSeries(bucket_s=60, max_buckets=10).view().small_path == {
        "hedged": 0, "small_busy": 0, "small_not_faster": 0}
