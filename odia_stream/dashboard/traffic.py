"""Coverage and latency over time, from the response topic, in fixed time buckets."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from odia_stream.dashboard.view import TrafficPoint, TrafficView
from odia_stream.serving.small_path import POLICY_REASONS
from schemas import ServeResponse


@dataclass
class _Bucket:
    #: Responses per ``served_by`` (``none``: errors answered by nobody).
    served_by: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    request_ids: set[str] = field(default_factory=set)
    #: Responses per small-path policy route reason (:data:`~odia_stream.serving.small_path.POLICY_REASONS`).
    small_path: Counter[str] = field(default_factory=Counter)
    #: The bucket's point and latencies as an array, computed once until the bucket changes.
    cached: tuple[TrafficPoint, np.ndarray] | None = None

    @property
    def requests(self) -> int:
        return self.served_by.total()


def _epoch(ts: datetime) -> float:
    """Seconds since the epoch; a naive timestamp is taken as UTC."""
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).timestamp()


def _p50_p90(values: np.ndarray) -> tuple[float, float]:
    p50, p90 = np.percentile(values, [50, 90])
    return float(p50), float(p90)


class TrafficSeries:
    """Responses counted per ``bucket_s`` bucket of their ``answered_at`` time.

    Coverage is the share served without the large model (``served_by`` ``small`` or ``template``;
    errors answered by nobody count as not covered); latency is ``latency.total_ms``, as p50 and p90. Only the newest
    ``max_buckets`` buckets are kept: responses older than that, and a request id already counted
    in its bucket (a redelivery), are counted in ``dropped``; those of buckets that leave the
    window in ``expired``.
    """

    def __init__(self, bucket_s: float, max_buckets: int) -> None:
        if not bucket_s > 0 or not math.isfinite(bucket_s):
            raise ValueError(f"bucket_s must be a positive number of seconds, got {bucket_s!r}")
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be >= 1, got {max_buckets}")
        self.bucket_s = float(bucket_s)
        self.max_buckets = max_buckets
        self._buckets: dict[int, _Bucket] = {}
        self._newest: int | None = None
        self.dropped = 0
        #: Responses counted in buckets that have since left the window.
        self.expired = 0

    def apply(self, response: ServeResponse) -> bool:
        """Count one response; returns False when it was dropped (too old, or a redelivery)."""
        index = math.floor(_epoch(response.answered_at) / self.bucket_s)
        if self._newest is not None and index <= self._newest - self.max_buckets:
            self.dropped += 1
            return False
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = _Bucket()
        if response.request_id in bucket.request_ids:
            self.dropped += 1
            return False
        bucket.request_ids.add(response.request_id)
        bucket.served_by[response.served_by] += 1
        if response.route_reason in POLICY_REASONS:
            bucket.small_path[response.route_reason] += 1
        bucket.latencies_ms.append(response.latency.total_ms)
        bucket.cached = None
        if self._newest is None or index > self._newest:
            self._newest = index
            for old in [i for i in self._buckets if i <= index - self.max_buckets]:
                self.expired += self._buckets.pop(old).requests
        return True

    def _point(self, index: int) -> tuple[TrafficPoint, np.ndarray]:
        b = self._buckets[index]
        if b.cached is None:
            latencies = np.asarray(b.latencies_ms, dtype=np.float64)
            p50, p90 = _p50_p90(latencies)
            point = TrafficPoint(
                start=datetime.fromtimestamp(index * self.bucket_s, UTC),
                requests=b.requests,
                template=b.served_by["template"],
                small=b.served_by["small"],
                large=b.served_by["large"],
                none=b.served_by["none"],
                coverage=(b.served_by["small"] + b.served_by["template"]) / b.requests,
                p50_ms=p50,
                p90_ms=p90,
            )
            b.cached = (point, latencies)
        return b.cached

    def points(self) -> list[TrafficPoint]:
        """One point per bucket that holds responses, oldest first."""
        return [self._point(i)[0] for i in sorted(self._buckets)]

    def view(self) -> TrafficView:
        """Points plus coverage and latency over the whole retained window."""
        computed = [self._point(i) for i in sorted(self._buckets)]
        points = [p for p, _ in computed]
        requests = sum(p.requests for p in points)
        small = sum(p.small + p.template for p in points)
        p50 = p90 = None
        if computed:
            p50, p90 = _p50_p90(np.concatenate([lat for _, lat in computed]))
        return TrafficView(
            bucket_s=self.bucket_s,
            points=points,
            requests=requests,
            coverage=small / requests if requests else None,
            p50_ms=p50,
            p90_ms=p90,
            dropped=self.dropped,
            expired=self.expired,
            small_path={r: sum(b.small_path[r] for b in self._buckets.values()) for r in POLICY_REASONS},
        )
