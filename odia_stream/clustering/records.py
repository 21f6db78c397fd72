"""The learner's records: identical-query groups, clusters and kept training examples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from odia_stream.keys import GroupKey


@dataclass
class QueryGroup:
    """All records of one normalised query within one scope."""

    group_id: int
    scope: str
    app: str
    norm: str
    query: str
    cluster_id: int
    embedding: np.ndarray
    count: int = 0
    function_counts: Counter[str] = field(default_factory=Counter)
    last_seen: datetime | None = None
    #: Set when this group was pruned as a near-duplicate of another (its records moved there).
    alias_of: int | None = None
    #: Entity values found in the query when it was first seen ((type, value) pairs).
    slots: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> GroupKey:
        """``(scope, normalised query)``: what records are matched to the group by
        (:func:`~odia_stream.keys.group_key_of`)."""
        return self.scope, self.norm


@dataclass
class Cluster:
    """A semantic cluster: pooled groups, their function counts and its representative."""

    cluster_id: int
    scope: str
    app: str
    weighted_sum: np.ndarray
    weight: float = 0.0
    size: int = 0
    function_counts: Counter[str] = field(default_factory=Counter)
    group_ids: list[int] = field(default_factory=list)
    version: int = 0
    label: str = "undecided"
    dominant_function: str | None = None
    dominant_share: float = 0.0
    share_lower_bound: float = 0.0
    #: Learner state version of the cluster's last change (drives re-publication after a crash).
    changed_at: int = 0

    def representative(self) -> np.ndarray:
        """Unit-length count-weighted average of the member query embeddings."""
        norm = float(np.linalg.norm(self.weighted_sum))
        return (self.weighted_sum / norm).astype(np.float32) if norm > 0 else self.weighted_sum


@dataclass(frozen=True)
class StoredExample:
    """One kept record of a group: what training needs to rebuild the prompt and target."""

    event_id: str
    group_id: int
    function: str
    timestamp: datetime
    completeness: int
    query: str
    history_json: str
    call_json: str
    tools_key: str
