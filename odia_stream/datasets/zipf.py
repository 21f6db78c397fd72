"""Zipf resampling: replay a dataset with production-like repetition (popular queries recur).

The base events are put in a seeded random order; the event at rank ``r`` (1-based) is drawn
with probability proportional to ``1 / r ** exponent``. Each draw is a distinct log: it gets
the event id ``<original id>#<k>`` (k = draw number) and the timestamp ``start + k * interval``.
Everything is a function of ``seed`` (Python's ``random.Random``, stable across platforms).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from odia_stream.datasets.base import DATASET_EPOCH, stable_hash
from schemas import FCLogEvent

__all__ = ["zipf_resample", "zipf_weights"]

_MAX_ID = 200


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Unnormalised Zipf weights ``1 / r ** exponent`` for ranks 1..n."""
    return [1.0 / (r**exponent) for r in range(1, n + 1)]


def _draw_id(original: str, k: int) -> str:
    candidate = f"{original}#{k}"
    if len(candidate) <= _MAX_ID:
        return candidate
    suffix = f"~{stable_hash(original, 12)}#{k}"
    return original[: _MAX_ID - len(suffix)] + suffix


def zipf_resample(
    events: Sequence[FCLogEvent],
    n: int,
    *,
    exponent: float = 1.1,
    seed: int = 0,
    start: datetime = DATASET_EPOCH,
    interval: timedelta = timedelta(seconds=1),
) -> Iterator[FCLogEvent]:
    """Yield ``n`` draws from ``events`` with Zipf-distributed popularity (deterministic under ``seed``)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if exponent <= 0:
        raise ValueError("exponent must be > 0")
    if n and not events:
        raise ValueError("cannot resample from no events")
    if n == 0:
        return
    rng = random.Random(seed)
    order = list(range(len(events)))
    rng.shuffle(order)
    cumulative = list(itertools.accumulate(zipf_weights(len(order), exponent)))
    for k in range(n):
        rank = rng.choices(range(len(order)), cum_weights=cumulative, k=1)[0]
        base = events[order[rank]]
        yield base.model_copy(
            update={"event_id": _draw_id(base.event_id, k), "timestamp": start + k * interval}
        )
