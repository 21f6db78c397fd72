"""Pruning: which examples a query keeps (recent, more complete arguments first), and which
queries of a cluster are near-identical (merged into one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import numpy as np


class ExampleLike(Protocol):
    """What example selection needs to know."""

    @property
    def event_id(self) -> str: ...

    @property
    def function(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def completeness(self) -> int: ...


E = TypeVar("E", bound=ExampleLike)


def argument_completeness(arguments: Mapping[str, Any]) -> int:
    """Number of arguments with a non-empty value (``None``, ``""``, ``[]``, ``{}`` are empty)."""
    return sum(1 for v in arguments.values() if v not in (None, "", [], {}))


def select_examples(examples: Sequence[E], cap: int) -> list[E]:
    """Keep at most ``cap`` examples per function: most complete arguments first, then most
    recent, then event id (deterministic)."""
    by_function: dict[str, list[E]] = {}
    for ex in examples:
        by_function.setdefault(ex.function, []).append(ex)
    kept: list[E] = []
    for function in sorted(by_function):
        ranked = sorted(
            by_function[function], key=lambda e: (-e.completeness, -e.timestamp.timestamp(), e.event_id)
        )
        kept.extend(ranked[:cap])
    return kept


def near_duplicates(new: np.ndarray, existing: np.ndarray, min_similarity: float) -> list[int | None]:
    """For each row of ``new``: the index of its most similar row in ``existing`` when the cosine
    similarity reaches ``min_similarity``, else ``None`` (rows are unit length)."""
    if len(new) == 0:
        return []
    if len(existing) == 0:
        return [None] * len(new)
    sims = new @ existing.T
    best = sims.argmax(axis=1)
    return [int(b) if sims[i, b] >= min_similarity else None for i, b in enumerate(best)]
