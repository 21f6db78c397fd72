"""Train/test split by group: records of one group (e.g. rewrites of one HammerBench dialogue,
or zipf redraws of one record) never land on both sides."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from odia_stream.datasets.base import group_of
from schemas import FCLogEvent

__all__ = ["group_of", "split_by_group"]


def split_by_group(
    events: Iterable[FCLogEvent],
    *,
    test_fraction: float,
    seed: int,
    group: Callable[[FCLogEvent], str] = group_of,
) -> tuple[list[FCLogEvent], list[FCLogEvent]]:
    """``(train, test)`` with about ``test_fraction`` of the events in test, whole groups only.

    Groups are visited in a seeded random order (of their sorted keys, so the result does not
    depend on input order) and put into test while they fit under the target count; the
    first group always goes in, so a non-zero fraction yields a non-empty test set. Each side
    keeps the input order.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError("test_fraction must be within [0, 1]")
    items = list(events)
    keys = [group(e) for e in items]
    sizes: dict[str, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    target = round(test_fraction * len(items))
    if test_fraction > 0 and items:
        target = max(target, 1)
    test_groups: set[str] = set()
    taken = 0
    for key in order:
        if taken >= target:
            break
        if taken == 0 or taken + sizes[key] <= target:
            test_groups.add(key)
            taken += sizes[key]
    train = [e for e, k in zip(items, keys, strict=True) if k not in test_groups]
    test = [e for e, k in zip(items, keys, strict=True) if k in test_groups]
    return train, test
