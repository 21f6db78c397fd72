"""The cluster-state topic folded as a table: the last value per key wins, merged clusters hidden."""

from __future__ import annotations

import heapq
from typing import get_args

from odia_stream.dashboard.compacted import CompactedTable
from odia_stream.dashboard.view import ClusterRow, LabelTotal
from schemas import ClusterLabel, ClusterState

LABELS: tuple[ClusterLabel, ...] = get_args(ClusterLabel)


class LatestClusterStates:
    """Latest ``ClusterState`` per key, as a compacted topic would keep it.

    Records are applied in topic order (a key always lives in one partition, so per-key order
    is the partition's). A newer record replaces the older one even when its ``version`` is lower
    (a rebuilt learner starts counting again); a tombstone (no value) deletes the key. Clusters
    with ``merged_into`` set are kept but not shown.
    """

    def __init__(self) -> None:
        self._latest: CompactedTable[ClusterState] = CompactedTable(lambda s: s.cluster_id, "cluster_id")

    def apply(self, key: str, state: ClusterState | None) -> None:
        """Fold one record of the topic; ``None`` is a tombstone."""
        self._latest.apply(key, state)

    def get(self, cluster_id: str) -> ClusterState | None:
        """The latest state of a cluster (merged ones included), if any."""
        return self._latest.get(cluster_id)

    def live(self) -> list[ClusterState]:
        """Clusters not merged into another, largest first (ties by id)."""
        alive = [s for s in self._latest.values() if s.merged_into is None]
        return sorted(alive, key=lambda s: (-s.size, s.cluster_id))

    @property
    def merged(self) -> int:
        """How many known clusters were merged into another."""
        return sum(1 for s in self._latest.values() if s.merged_into is not None)

    def __len__(self) -> int:
        return len(self._latest)

    def rows(self, limit: int) -> list[ClusterRow]:
        """The ``limit`` largest live clusters as page rows."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        alive = (s for s in self._latest.values() if s.merged_into is None)
        return [_row(s) for s in heapq.nsmallest(limit, alive, key=lambda s: (-s.size, s.cluster_id))]

    def totals(self) -> list[LabelTotal]:
        """Live clusters and records per label (every label listed, zeros included)."""
        clusters = dict.fromkeys(LABELS, 0)
        records = dict.fromkeys(LABELS, 0)
        for s in self._latest.values():
            if s.merged_into is None:
                clusters[s.label] += 1
                records[s.label] += s.size
        return [LabelTotal(label=label, clusters=clusters[label], records=records[label]) for label in LABELS]


def _row(s: ClusterState) -> ClusterRow:
    return ClusterRow.of(s)
